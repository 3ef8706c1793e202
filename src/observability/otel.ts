/**
 * OpenTelemetry tracing, configured by the standard OTEL_* environment variables (docs/design.md
 * "Ecosystem"). With none of them set nothing is loaded: the SDK and exporters are imported only
 * here, dynamically, so the spans of src/tracing stay the API's no-ops and cost nothing measurable.
 *
 * Read: OTEL_SDK_DISABLED, OTEL_TRACES_EXPORTER (`otlp` or `none`), OTEL_EXPORTER_OTLP_ENDPOINT /
 * OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, OTEL_EXPORTER_OTLP_PROTOCOL / OTEL_EXPORTER_OTLP_TRACES_PROTOCOL
 * (`http/protobuf` default, or `http/json`), OTEL_SERVICE_NAME, OTEL_TRACES_SAMPLER and
 * OTEL_TRACES_SAMPLER_ARG. The exporters read their own OTEL_EXPORTER_OTLP_HEADERS and timeouts.
 */
import { context, propagation, trace } from '@opentelemetry/api';
import { ConfigError } from '../config/schema.js';

export interface Tracing {
  /** Where spans go (for the start log line). */
  readonly endpoint: string;
  readonly protocol: 'http/protobuf' | 'http/json';
  /** Exports what is buffered, then stops and unregisters the SDK. */
  shutdown(): Promise<void>;
}

const DEFAULT_ENDPOINT = 'http://localhost:4318';
const TRACES_PATH = '/v1/traces';
const DEFAULT_SERVICE_NAME = 'credential-gateway';
const PROTOCOLS = ['http/protobuf', 'http/json'] as const;
type Protocol = (typeof PROTOCOLS)[number];

function value(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const v = env[name]?.trim();
  return v === '' ? undefined : v;
}

/** Whether OTEL_* asks for traces at all: an exporter or an endpoint, and the SDK not disabled. */
export function tracingWanted(env: NodeJS.ProcessEnv): boolean {
  if (value(env, 'OTEL_SDK_DISABLED') === 'true') return false;
  const exporter = value(env, 'OTEL_TRACES_EXPORTER');
  if (exporter === 'none') return false;
  return (
    exporter !== undefined ||
    value(env, 'OTEL_EXPORTER_OTLP_ENDPOINT') !== undefined ||
    value(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT') !== undefined
  );
}

interface TracingSettings {
  readonly url: string;
  readonly protocol: Protocol;
  readonly serviceName: string;
  readonly sampler: { readonly name: string; readonly ratio: number };
}

const SAMPLERS = [
  'always_on',
  'always_off',
  'traceidratio',
  'parentbased_always_on',
  'parentbased_always_off',
  'parentbased_traceidratio',
];

/** Validates what OTEL_* says; a bad value is a start failure naming the variable, not a silent default. */
export function tracingSettings(env: NodeJS.ProcessEnv): TracingSettings {
  const problems: string[] = [];
  const exporter = value(env, 'OTEL_TRACES_EXPORTER') ?? 'otlp';
  if (exporter !== 'otlp') problems.push(`OTEL_TRACES_EXPORTER must be otlp or none (got ${JSON.stringify(exporter)})`);
  const protocol =
    value(env, 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL') ?? value(env, 'OTEL_EXPORTER_OTLP_PROTOCOL') ?? 'http/protobuf';
  if (!(PROTOCOLS as readonly string[]).includes(protocol))
    problems.push(`OTEL_EXPORTER_OTLP_PROTOCOL must be http/protobuf or http/json (got ${JSON.stringify(protocol)})`);
  const signalUrl = value(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT');
  const url =
    signalUrl ?? `${(value(env, 'OTEL_EXPORTER_OTLP_ENDPOINT') ?? DEFAULT_ENDPOINT).replace(/\/+$/, '')}${TRACES_PATH}`;
  try {
    if (!['http:', 'https:'].includes(new URL(url).protocol)) throw new Error();
  } catch {
    problems.push(
      `${signalUrl !== undefined ? 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT' : 'OTEL_EXPORTER_OTLP_ENDPOINT'} must be an http(s) URL`,
    );
  }
  const samplerName = value(env, 'OTEL_TRACES_SAMPLER') ?? 'parentbased_always_on';
  if (!SAMPLERS.includes(samplerName)) problems.push(`OTEL_TRACES_SAMPLER must be one of ${SAMPLERS.join(', ')}`);
  const ratioText = value(env, 'OTEL_TRACES_SAMPLER_ARG');
  const ratio = ratioText === undefined ? 1 : Number(ratioText);
  if (!(ratio >= 0 && ratio <= 1)) problems.push('OTEL_TRACES_SAMPLER_ARG must be a number from 0 to 1');
  if (problems.length > 0) throw new ConfigError(problems);
  return {
    url,
    protocol: protocol as Protocol,
    serviceName: value(env, 'OTEL_SERVICE_NAME') ?? DEFAULT_SERVICE_NAME,
    sampler: { name: samplerName, ratio },
  };
}

/**
 * Starts the SDK when OTEL_* asks for it and registers it globally (tracer provider, async context,
 * W3C trace-context propagation); null, with nothing imported, when it does not.
 */
export async function startTracing(env: NodeJS.ProcessEnv): Promise<Tracing | null> {
  if (!tracingWanted(env)) return null;
  const settings = tracingSettings(env);
  const [sdk, { resourceFromAttributes }, exporterModule] = await Promise.all([
    import('@opentelemetry/sdk-trace-node'),
    import('@opentelemetry/resources'),
    settings.protocol === 'http/json'
      ? import('@opentelemetry/exporter-trace-otlp-http')
      : import('@opentelemetry/exporter-trace-otlp-proto'),
  ]);
  const exporter = new exporterModule.OTLPTraceExporter({ url: settings.url });
  const { name, ratio } = settings.sampler;
  const root = name.endsWith('always_off')
    ? new sdk.AlwaysOffSampler()
    : name.endsWith('traceidratio')
      ? new sdk.TraceIdRatioBasedSampler(ratio)
      : new sdk.AlwaysOnSampler();
  const provider = new sdk.NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': settings.serviceName }),
    sampler: name.startsWith('parentbased_') ? new sdk.ParentBasedSampler({ root }) : root,
    spanProcessors: [new sdk.BatchSpanProcessor(exporter)],
  });
  provider.register();
  return {
    endpoint: settings.url,
    protocol: settings.protocol,
    async shutdown() {
      try {
        await provider.shutdown();
      } finally {
        trace.disable();
        context.disable();
        propagation.disable();
      }
    },
  };
}
