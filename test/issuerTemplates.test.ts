/**
 * Connection templates and issuer names (docs/trust-model.md): `{issuer}`,
 * `identity.issuers[].name`, and templates over claims a user can change, refused unless the
 * binding opts in.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { ConfigError, issuerNameOf, validateConfig } from '../src/config/schema.js';
import { callerFromClaims } from '../src/identity/caller.js';
import {
  parseSupergraphConfig,
  renderConnectionId,
  type ConnectionBinding,
  type SupergraphConfig,
} from '../src/gateway/supergraphConfig.js';
import { startTestApp } from './support/app.js';
import { tempDir, type TempDir } from './support/tmp.js';

const SDL =
  'extend schema @link(url: "https://specs.apollo.dev/federation/v2.9", import: ["@key"])\ntype Query { a: String }\n';
const PATH = 'subgraphs.a.authorization';

let tmp: TempDir;
beforeEach(async () => {
  tmp = await tempDir('cg-issuer-templates-');
});
afterEach(async () => {
  await tmp.cleanup();
});

function supergraphWith(authorization: Record<string, unknown>): string {
  writeFileSync(tmp.file('a.graphql'), SDL);
  const file = tmp.file('supergraph.yaml');
  writeFileSync(
    file,
    stringify({
      federation_version: '=2.9.0',
      subgraphs: { a: { routing_url: 'http://127.0.0.1:1/graphql', schema: { file: './a.graphql' }, authorization } },
    }),
  );
  return file;
}

function parse(authorization: Record<string, unknown>): SupergraphConfig {
  const file = supergraphWith(authorization);
  return parseSupergraphConfig(readFileSync(file, 'utf8'), file);
}

function problemsOf(fn: () => unknown): readonly string[] {
  try {
    fn();
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
  return [];
}

describe('{issuer} in connection templates', () => {
  it('renders the name of the issuer that verified the caller', () => {
    const template = (
      parse({ provider: 'p1', connection: '{issuer}.{jwt.sub}' }).subgraphs[0]!.authorization! as ConnectionBinding
    ).connection;
    expect(template.kind).toBe('claims');
    expect(renderConnectionId(template, { sub: 'alice' }, 'corp')).toBe('corp.alice');
    expect(renderConnectionId(template, { sub: 'alice' }, 'partner')).toBe('partner.alice');
    // No issuer, no id: never a shared one.
    expect(renderConnectionId(template, { sub: 'alice' }, null)).toBeNull();
  });

  it('makes a template caller-dependent even without claims, so a managed binding refuses it', () => {
    const problems = problemsOf(() => parse({ provider: 'p1', connection: 'team-{issuer}', identity: 'managed' }));
    expect(problems.join('\n')).toContain(`${PATH}.connection must be a fixed connection id with identity managed`);
  });

  it('names the placeholder it does not know', () => {
    const problems = problemsOf(() => parse({ provider: 'p1', connection: '{iss}.{jwt.sub}' }));
    expect(problems.join('\n')).toContain(
      `${PATH}.connection has an unknown placeholder {iss}: expected {jwt.<claim>} or {issuer}`,
    );
  });
});

describe('templates over mutable claims', () => {
  it.each(['email', 'preferred_username', 'upn', 'name'])(
    'refuses {jwt.%s} at start, naming the path and the way out',
    (claim) => {
      const problems = problemsOf(() => parse({ provider: 'p1', connection: `user-{jwt.${claim}}` }));
      expect(problems).toHaveLength(1);
      expect(problems[0]).toContain(`${PATH}.connection uses {jwt.${claim}}`);
      expect(problems[0]).toContain('allow_mutable_claims: true');
    },
  );

  it('accepts them when the binding sets allow_mutable_claims: true', () => {
    const template = (
      parse({ provider: 'p1', connection: '{issuer}.{jwt.email}', allow_mutable_claims: true }).subgraphs[0]!
        .authorization! as ConnectionBinding
    ).connection;
    expect(renderConnectionId(template, { email: 'alice@example.com' }, 'corp')).toBe('corp.alice@example.com');
  });

  it('accepts immutable claims without the flag, and refuses a flag that is not a boolean', () => {
    expect(parse({ provider: 'p1', connection: '{jwt.tid}.{jwt.oid}' }).subgraphs[0]!.authorization).not.toBeNull();
    expect(
      problemsOf(() => parse({ provider: 'p1', connection: '{jwt.sub}', allow_mutable_claims: 'yes' })).join('\n'),
    ).toContain(`${PATH}.allow_mutable_claims must be true or false`);
  });

  it('stops the gateway from starting, with the message naming the file and path', async () => {
    const file = supergraphWith({ provider: 'p1', connection: '{jwt.preferred_username}' });
    await expect(startTestApp({ supergraph: file })).rejects.toThrow(
      new RegExp(`supergraph\\.yaml: ${PATH.replace(/\./g, '\\.')}\\.connection uses \\{jwt\\.preferred_username\\}`),
    );
  });
});

describe('identity.issuers[].name', () => {
  const issuer = (over: Record<string, unknown>) => ({
    issuer: 'https://login.example.com/t1/v2.0',
    audience: 'api://x',
    ...over,
  });

  it('is derived from the issuer URL when not set, and kept when set', () => {
    const config = validateConfig({
      identity: { issuers: [issuer({}), issuer({ issuer: 'http://127.0.0.1:4555', name: 'local' })] },
    });
    expect(config.identity.issuers.map((i) => i.name)).toEqual(['login-example-com-t1-v2-0', 'local']);
    expect(issuerNameOf({ issuer: 'http://127.0.0.1:4555' })).toBe('127-0-0-1-4555');
    expect(issuerNameOf({ issuer: 'urn:example:issuer' })).toBe('urn-example-issuer');
  });

  it('refuses names outside [a-z0-9-] and names two issuers share', () => {
    expect(problemsOf(() => validateConfig({ identity: { issuers: [issuer({ name: 'Corp' })] } }))).toEqual([
      'identity.issuers[0].name must be 1-64 characters of a-z, 0-9 and -',
    ]);
    expect(problemsOf(() => validateConfig({ identity: { issuers: [issuer({ name: 'a.b' })] } }))).toHaveLength(1);
    const same = problemsOf(() =>
      validateConfig({
        identity: {
          issuers: [issuer({ name: 'corp' }), issuer({ issuer: 'https://other.example.com', name: 'corp' })],
        },
      }),
    );
    expect(same).toEqual(['identity.issuers[1].name corp is also the name of identity.issuers[0]: set distinct names']);
    // Derived names that collide must be set by hand.
    const derived = problemsOf(() =>
      validateConfig({
        identity: {
          issuers: [issuer({ issuer: 'https://a.example.com' }), issuer({ issuer: 'https://a.example.com/' })],
        },
      }),
    );
    expect(derived).toEqual([
      'identity.issuers[1].name a-example-com is also the name of identity.issuers[0]: set distinct names',
    ]);
  });

  it('is what a verified caller carries, derived when a hand-built caller has none', () => {
    expect(callerFromClaims({ iss: 'https://a.example.com', sub: 's' }, 'roles', 'corp').issuerName).toBe('corp');
    expect(callerFromClaims({ iss: 'https://a.example.com', sub: 's' }, 'roles').issuerName).toBe('a-example-com');
  });
});
