/** GraphQL POSTs over an undici Pool, for tests and benches that send many queries to one app. */
import type { Pool } from 'undici';

/** What a GraphQL response body holds, as loosely as the callers read it. */
export interface GraphqlBody {
  readonly data?: any;
  readonly errors?: any[];
}

/** POSTs `{ query, variables }` as JSON to `path` of the pool's origin, with `headers`, and returns the parsed body. */
export function graphqlPoster(pool: Pool) {
  return async (
    path: string,
    query: string,
    headers: Record<string, string>,
    variables: Record<string, unknown> = {},
  ): Promise<GraphqlBody> => {
    const res = await pool.request({
      path,
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ query, variables }),
    });
    return (await res.body.json()) as GraphqlBody;
  };
}
