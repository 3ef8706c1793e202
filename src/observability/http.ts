/** Counts answered HTTP requests by route pattern (never the raw path: it carries ids) and status. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Counter } from './metrics.js';

export type RequestHandler<A extends unknown[]> = (
  req: IncomingMessage,
  res: ServerResponse,
  ...rest: A
) => Promise<void>;

/** `handler`, counting each response it (or the router, on its failure) finishes under `route`. */
export function countResponses<A extends unknown[]>(
  route: string,
  counter: Counter,
  handler: RequestHandler<A>,
): RequestHandler<A> {
  return (req, res, ...rest) => {
    res.once('finish', () => counter.inc({ route, status: String(res.statusCode) }));
    return handler(req, res, ...rest);
  };
}
