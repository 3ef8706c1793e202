import type { IncomingMessage, ServerResponse } from 'node:http';
import { GatewayError, toHttpBody } from '../errors.js';

/**
 * Reads a request body up to `maxBytes`; more is a BAD_USER_INPUT, not a memory spike. Past the
 * limit the rest is read and dropped rather than left unread: closing a socket with unread data
 * resets the connection, and the client would see that instead of the 400.
 */
export function readBody(req: IncomingMessage, maxBytes: number): Promise<string> {
  const tooLarge = () => new GatewayError('BAD_USER_INPUT', `request body exceeds ${maxBytes} bytes`);
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > maxBytes) return Promise.reject(tooLarge());
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
      if (size <= maxBytes) return void chunks.push(chunk);
      stop();
      req.resume();
      reject(tooLarge());
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
    ...(typeof retryAfter === 'number' && { 'retry-after': String(retryAfter) }),
  });
  res.end(JSON.stringify(payload));
}

export function redirect(res: ServerResponse, location: string): void {
  res.writeHead(302, { location, 'cache-control': 'no-store' });
  res.end();
}
