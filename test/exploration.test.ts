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

  it.each(['/graphql', '/admin/graphql'])(
    `${exploration ? 'serves' : 'does not serve'} the Sandbox landing page on %s`,
    async (path) => {
      const res = await page(`${s.t.url}${path}`);
      if (exploration) {
        expect(res.status).toBe(200);
        expect(res.html).toContain('embeddable-sandbox');
      } else {
        expect(res.html).not.toContain('embeddable-sandbox');
      }
    },
  );

  // Typos an anonymous caller may send: each would draw a suggestion naming the schema's own fields,
  // types or enum values ("Did you mean ...?"), before any authentication.
  const TYPOS: Record<string, readonly string[]> = {
    '/graphql': ['{ githubTokenInf { subject } }', '{ githubTokenInfo { subjec } }'],
    '/admin/graphql': [
      '{ credentialProvidrs { items { id } } }',
      '{ credentialProviders { itemz { id } } }',
      'mutation { createAccessPolicy(providerId: "p", connectionId: "c", input: { id: "a", kind: USR, objectId: "o" }) { id } }',
    ],
  };

  it.each(['/graphql', '/admin/graphql'])(
    `${exploration ? 'suggests' : 'suggests nothing, to an anonymous caller,'} in errors on %s`,
    async (path) => {
      for (const query of TYPOS[path]!) {
        const res = await fetch(`${s.t.url}${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ query }),
        });
        const body = (await res.json()) as { errors: { message: string; extensions: { code: string } }[] };
        expect(res.status, query).toBe(400);
        expect(body.errors[0]!.extensions.code).toBe('GRAPHQL_VALIDATION_FAILED');
        const messages = body.errors.map((e) => e.message).join('\n');
        if (exploration) expect(messages, query).toMatch(/Did you mean/);
        else expect(messages, query).not.toMatch(/Did you mean|\?$/m);
      }
    },
  );

  it.each(['/graphql', '/admin/graphql'])(
    `${exploration ? 'answers' : 'refuses'} introspection on %s`,
    async (path) => {
      const body = await introspect(`${s.t.url}${path}`);
      if (exploration) expect(body.data.__schema.queryType.name).toBe('Query');
      else expect(body.errors![0].extensions.code).toBe('GRAPHQL_VALIDATION_FAILED');
    },
  );
});
