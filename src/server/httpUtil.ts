import type { IncomingMessage, ServerResponse } from 'node:http';
import { GatewayError, toHttpBody } from '../errors.js';

/** Reads a request body up to `maxBytes`; more is a BAD_USER_INPUT, not a memory spike. */
export async function readBody(req: IncomingMessage, maxBytes: number): Promise<string> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > maxBytes) throw new GatewayError('BAD_USER_INPUT', `request body exceeds ${maxBytes} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) throw new GatewayError('BAD_USER_INPUT', `request body exceeds ${maxBytes} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** `{error, message}` with the code's HTTP status (the endpoints' error contract). */
export function sendJson(res: ServerResponse, body: GatewayError | object, status = 200): void {
  const payload = body instanceof GatewayError ? toHttpBody(body) : body;
  const code = body instanceof GatewayError ? body.httpStatus : status;
  const retryAfter = body instanceof GatewayError ? body.details['retryAfterSeconds'] : undefined;
  res.writeHead(code, {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
    ...(typeof retryAfter === 'number' && { 'retry-after': String(retryAfter) }),
  });
  res.end(JSON.stringify(payload));
}

export function redirect(res: ServerResponse, location: string): void {
  res.writeHead(302, { location, 'cache-control': 'no-store' });
  res.end();
}
