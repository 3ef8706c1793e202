/**
 * A real OTLP/HTTP trace receiver on loopback, for tracing tests: accepts `POST /v1/traces` as
 * protobuf (`application/x-protobuf`) or JSON (`application/json`), decodes either with the OTLP
 * trace schema, and keeps every span in one normalized shape.
 *
 *   const r = await startOtlpReceiver();
 *   // gateway with OTEL_EXPORTER_OTLP_ENDPOINT=r.url
 *   r.spans  // [{ traceId, spanId, parentSpanId, name, kind, attributes, events }]
 */
import { gunzipSync } from 'node:zlib';
import { createServer, type Server } from 'node:http';
import protobuf from 'protobufjs';

/** The parts of opentelemetry/proto/{collector/trace/v1,trace/v1,common/v1,resource/v1} a receiver reads. */
const OTLP_TRACE_PROTO = `
syntax = "proto3";
package otlp;
message ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
message ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; string schema_url = 3; }
message Resource { repeated KeyValue attributes = 1; uint32 dropped_attributes_count = 2; }
message ScopeSpans { InstrumentationScope scope = 1; repeated Span spans = 2; string schema_url = 3; }
message InstrumentationScope { string name = 1; string version = 2; repeated KeyValue attributes = 3; uint32 dropped_attributes_count = 4; }
message Span {
  bytes trace_id = 1; bytes span_id = 2; string trace_state = 3; bytes parent_span_id = 4; string name = 5;
  int32 kind = 6; fixed64 start_time_unix_nano = 7; fixed64 end_time_unix_nano = 8;
  repeated KeyValue attributes = 9; uint32 dropped_attributes_count = 10;
  repeated Event events = 11; uint32 dropped_events_count = 12; repeated Link links = 13; uint32 dropped_links_count = 14;
  Status status = 15; fixed32 flags = 16;
}
message Event { fixed64 time_unix_nano = 1; string name = 2; repeated KeyValue attributes = 3; uint32 dropped_attributes_count = 4; }
message Link { bytes trace_id = 1; bytes span_id = 2; string trace_state = 3; repeated KeyValue attributes = 4; uint32 dropped_attributes_count = 5; fixed32 flags = 6; }
message Status { string message = 2; int32 code = 3; }
message KeyValue { string key = 1; AnyValue value = 2; }
message AnyValue {
  oneof value { string string_value = 1; bool bool_value = 2; int64 int_value = 3; double double_value = 4; ArrayValue array_value = 5; KeyValueList kvlist_value = 6; bytes bytes_value = 7; }
}
message ArrayValue { repeated AnyValue values = 1; }
message KeyValueList { repeated KeyValue values = 1; }
`;

const RequestType = protobuf.parse(OTLP_TRACE_PROTO).root.lookupType('otlp.ExportTraceServiceRequest');

export interface ReceivedSpan {
  readonly traceId: string;
  readonly spanId: string;
  /** '' for a root span. */
  readonly parentSpanId: string;
  readonly name: string;
  readonly kind: number;
  readonly scope: string;
  readonly serviceName: string;
  readonly attributes: Readonly<Record<string, unknown>>;
  readonly events: readonly { readonly name: string; readonly attributes: Readonly<Record<string, unknown>> }[];
  readonly statusMessage: string;
}

export interface OtlpReceiver {
  /** The base URL (what OTEL_EXPORTER_OTLP_ENDPOINT takes). */
  readonly url: string;
  readonly spans: ReceivedSpan[];
  /** Content types of the export requests received. */
  readonly contentTypes: string[];
  close(): Promise<void>;
}

type AnyValueJson = Record<string, unknown> | undefined;

function anyValue(v: AnyValueJson): unknown {
  if (!v) return undefined;
  if ('stringValue' in v) return v['stringValue'];
  if ('boolValue' in v) return v['boolValue'];
  if ('intValue' in v) return Number(v['intValue']);
  if ('doubleValue' in v) return Number(v['doubleValue']);
  if ('arrayValue' in v) return ((v['arrayValue'] as { values?: AnyValueJson[] }).values ?? []).map(anyValue);
  if ('kvlistValue' in v) return attributes((v['kvlistValue'] as { values?: KeyValueJson[] }).values);
  if ('bytesValue' in v) return v['bytesValue'];
  return undefined;
}

type KeyValueJson = { key: string; value?: AnyValueJson };

function attributes(list: KeyValueJson[] | undefined): Record<string, unknown> {
  return Object.fromEntries((list ?? []).map((kv) => [kv.key, anyValue(kv.value)]));
}

/** Ids: hex in OTLP/JSON; protobufjs's toObject gives them as hex too (bytes: 'hex' below is not an option, so converted here). */
function hexId(v: unknown): string {
  if (v === undefined || v === null || v === '') return '';
  if (typeof v === 'string') return v.toLowerCase();
  return Buffer.from(v as Uint8Array).toString('hex');
}

function normalize(request: { resourceSpans?: unknown[] }): ReceivedSpan[] {
  const out: ReceivedSpan[] = [];
  for (const rs of (request.resourceSpans ?? []) as {
    resource?: { attributes?: KeyValueJson[] };
    scopeSpans?: unknown[];
  }[]) {
    const serviceName = String(attributes(rs.resource?.attributes)['service.name'] ?? '');
    for (const ss of (rs.scopeSpans ?? []) as { scope?: { name?: string }; spans?: Record<string, unknown>[] }[]) {
      for (const s of ss.spans ?? [])
        out.push({
          traceId: hexId(s['traceId']),
          spanId: hexId(s['spanId']),
          parentSpanId: hexId(s['parentSpanId']),
          name: String(s['name']),
          kind: Number(s['kind'] ?? 0),
          scope: ss.scope?.name ?? '',
          serviceName,
          attributes: attributes(s['attributes'] as KeyValueJson[] | undefined),
          events: ((s['events'] ?? []) as { name: string; attributes?: KeyValueJson[] }[]).map((e) => ({
            name: e.name,
            attributes: attributes(e.attributes),
          })),
          statusMessage: String((s['status'] as { message?: string } | undefined)?.message ?? ''),
        });
    }
  }
  return out;
}

function decode(contentType: string, body: Buffer): ReceivedSpan[] {
  if (contentType.startsWith('application/json')) return normalize(JSON.parse(body.toString('utf8')));
  if (contentType.startsWith('application/x-protobuf')) {
    const message = RequestType.decode(body);
    return normalize(
      RequestType.toObject(message, { longs: String, defaults: false, oneofs: false }) as { resourceSpans?: unknown[] },
    );
  }
  throw new Error(`unexpected content type ${contentType}`);
}

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const contentTypes: string[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      try {
        if (req.method !== 'POST' || req.url !== '/v1/traces') return void res.writeHead(404).end();
        const raw = Buffer.concat(chunks);
        const body = req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw;
        const contentType = req.headers['content-type'] ?? '';
        contentTypes.push(contentType);
        spans.push(...decode(contentType, body));
        const json = contentType.startsWith('application/json');
        res.writeHead(200, { 'content-type': json ? 'application/json' : 'application/x-protobuf' });
        res.end(json ? '{}' : Buffer.alloc(0));
      } catch (e) {
        res.writeHead(400, { 'content-type': 'text/plain' }).end(String(e));
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    spans,
    contentTypes,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
