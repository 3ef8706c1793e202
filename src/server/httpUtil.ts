import type { IncomingMessage, ServerResponse } from 'node:http';
import { GatewayError, toHttpBody } from '../errors.js';

/** Requests whose body was refused unread: their answer closes the connection (sendJson). */
const refusedBodies = new WeakSet<IncomingMessage>();

/**
 * Reads a request body up to `maxBytes`; more is a BAD_USER_INPUT, not a memory spike. `inspect`
 * sees each chunk as it arrives; an error it returns refuses the body the same way, before it is
 * decoded. The rest of a refused body is not read: reading it costs the event loop as much as
 * accepting it would, so the 400 goes out with `connection: close` and the connection ends.
 */
export function readBody(
  req: IncomingMessage,
  maxBytes: number,
  inspect?: (chunk: Buffer) => GatewayError | null,
): Promise<string> {
  const tooLarge = () => new GatewayError('BAD_USER_INPUT', `request body exceeds ${maxBytes} bytes`);
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > maxBytes) {
    refusedBodies.add(req);
    return Promise.reject(tooLarge());
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const stop = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      const refused = size > maxBytes ? tooLarge() : (inspect?.(chunk) ?? null);
      if (refused === null) return void chunks.push(chunk);
      stop();
      req.pause();
      refusedBodies.add(req);
      reject(refused);
    };
    const onEnd = (): void => {
      stop();
      resolve(Buffer.concat(chunks).toString('utf8'));
    };
    const onError = (e: Error): void => {
      stop();
      reject(e);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
}

/** `{error, message}` with the code's HTTP status (the endpoints' error contract). */
export function sendJson(res: ServerResponse, body: GatewayError | object, status = 200): void {
  const payload = body instanceof GatewayError ? toHttpBody(body) : body;
  const code = body instanceof GatewayError ? body.httpStatus : status;
  const retryAfter = body instanceof GatewayError ? body.details['retryAfterSeconds'] : undefined;
  res.writeHead(code, {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
    ...(refusedBodies.has(res.req) && { connection: 'close' }),
    ...(typeof retryAfter === 'number' && { 'retry-after': String(retryAfter) }),
  });
  res.end(JSON.stringify(payload));
}

export function redirect(res: ServerResponse, location: string): void {
  res.writeHead(302, { location, 'cache-control': 'no-store' });
  res.end();
}
