/** Apollo Sandbox and introspection on both graphs, and both switched off for production. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStage, type Stage } from './support/federation.js';

const INTROSPECT = JSON.stringify({ query: '{ __schema { queryType { name } } }' });

async function page(url: string) {
  const res = await fetch(url, { headers: { accept: 'text/html' } });
  return { status: res.status, html: await res.text() };
}

async function introspect(url: string) {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: INTROSPECT });
  return (await res.json()) as { data?: any; errors?: any[] };
}

describe.each([true, false])('exploration %s', (exploration) => {
  let s: Stage;
  beforeAll(async () => {
    s = await startStage({ config: { server: { exploration } } });
  }, 60_000);
  afterAll(() => s?.close());

  it.each(['/graphql', '/admin/graphql'])(`${exploration ? 'serves' : 'does not serve'} the Sandbox landing page on %s`, async (path) => {
    const res = await page(`${s.t.url}${path}`);
    if (exploration) {
      expect(res.status).toBe(200);
      expect(res.html).toContain('embeddable-sandbox');
    } else {
      expect(res.html).not.toContain('embeddable-sandbox');
    }
  });

  it.each(['/graphql', '/admin/graphql'])(`${exploration ? 'answers' : 'refuses'} introspection on %s`, async (path) => {
    const body = await introspect(`${s.t.url}${path}`);
    if (exploration) expect(body.data.__schema.queryType.name).toBe('Query');
    else expect(body.errors![0].extensions.code).toBe('GRAPHQL_VALIDATION_FAILED');
  });
});
