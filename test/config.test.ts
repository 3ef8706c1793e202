import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { applyEnv, loadConfig } from '../src/config/load.js';
import { CONFIG_KEYS, ConfigError, envNameOf, validateConfig } from '../src/config/schema.js';

function problemsOf(input: unknown): readonly string[] {
  try {
    validateConfig(input);
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
  return [];
}

describe('configuration', () => {
  it('applies every default when there is no file', () => {
    const config = validateConfig(undefined);
    expect(config.server.port).toBe(4000);
    expect(config.store.url).toBe('sqlite:./data/credentials.db');
    expect(config.cache.refreshSkewSeconds).toBe(180);
    expect(config.limits).toEqual({
      providersPerInstance: 1000,
      connectionsPerProvider: 10_000,
      unconsentedConnectionTtlSeconds: 86_400,
      accessPoliciesPerConnection: 100,
      tokenAcquisitionsPerMinute: 250,
    });
    expect(config.server.publicUrl).toBeNull();
    expect(Object.isFrozen(config.limits)).toBe(true);
  });

  it('names the key path of every problem', () => {
    expect(
      problemsOf({
        server: { port: 70000, publicUrl: 'ftp://x' },
        limits: { providersPerInstance: 'many' },
        identity: {
          issuers: [
            { issuer: 'https://a', audience: 'x' },
            { audience: 7, algorithms: ['HS256'] },
          ],
        },
        cache: { enabled: 'yes' },
      }),
    ).toEqual([
      'server.port must be at most 65535',
      'identity.issuers[1].issuer must be a non-empty string',
      'identity.issuers[1].audience must be a non-empty string',
      'identity.issuers[1].algorithms must be a non-empty list of asymmetric JWS algorithms',
      'cache.enabled must be true or false',
      'limits.providersPerInstance must be an integer',
    ]);
  });

  it.each([['hs256'], ['None'], ['HS512']])(
    'refuses the JWS algorithm %s in any case, as the verifier would at start',
    (algorithm) => {
      expect(
        problemsOf({
          identity: { issuers: [{ issuer: 'https://a', audience: 'x', algorithms: ['RS256', algorithm] }] },
        }),
      ).toEqual(['identity.issuers[0].algorithms must be a non-empty list of asymmetric JWS algorithms']);
    },
  );

  it('refuses unknown keys instead of ignoring a typo', () => {
    expect(problemsOf({ server: { prot: 1 }, stroe: {} })).toEqual([
      'server.prot is not a known configuration key',
      'stroe is not a known configuration key',
    ]);
  });

  it('checks cross-key rules: publicUrl, redirect origins, store url, env keys', () => {
    expect(
      problemsOf({
        server: { publicUrl: 'not a url' },
        consent: { allowedRedirectOrigins: ['https://app.example.com/path'] },
        store: { url: 'mysql://x' },
        keys: { key: 'k1:short' },
      }),
    ).toEqual([
      'server.publicUrl must be an http(s) URL',
      'consent.allowedRedirectOrigins[0] must be an origin like https://app.example.com',
      'store.url must start with sqlite: or postgres://',
      'keys.key[0] must be kid:base64 of 32 bytes (kid of a-z, 0-9, -)',
    ]);
  });

  it('takes every key from the environment, typed', () => {
    const env = {
      CG_SERVER_PORT: '5001',
      CG_CACHE_ENABLED: 'false',
      CG_ADMIN_API_KEYS: 'a, b',
      CG_IDENTITY_ISSUERS: JSON.stringify([{ issuer: 'https://idp.example', audience: 'api' }]),
      CG_SERVER_PUBLIC_URL: 'https://gw.example.com/',
    };
    const config = validateConfig(applyEnv({ server: { port: 1 } }, env));
    expect(config.server.port).toBe(5001);
    expect(config.cache.enabled).toBe(false);
    expect(config.admin.apiKeys).toEqual(['a', 'b']);
    expect(config.identity.issuers[0]).toMatchObject({ issuer: 'https://idp.example', audience: 'api', jwksUri: null });
    expect(config.server.publicUrl).toBe('https://gw.example.com');
  });

  it('has one environment variable per key, all distinct', () => {
    const names = CONFIG_KEYS.map((k) => envNameOf(k.path));
    expect(new Set(names).size).toBe(names.length);
    expect(envNameOf('limits.tokenAcquisitionsPerMinute')).toBe('CG_LIMITS_TOKEN_ACQUISITIONS_PER_MINUTE');
  });

  it('reads the file named by --config, and reports YAML and read errors with the file name', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cg-config-'));
    const good = join(dir, 'good.yaml');
    writeFileSync(good, 'server:\n  port: 4100\noauth:\n  timeoutMs: 2500\n');
    expect(loadConfig(['--config', good], {}).oauth.timeoutMs).toBe(2500);
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'server: [unclosed\n');
    expect(() => loadConfig(['--config', bad], {})).toThrow(ConfigError);
    expect(() => loadConfig([], { CONFIG: join(dir, 'missing.yaml') })).toThrow(
      /cannot read config file .*missing\.yaml: ENOENT/,
    );
    const list = join(dir, 'list.yaml');
    writeFileSync(list, '- 1\n- 2\n');
    expect(() => loadConfig(['--config', list], {})).toThrow(/must be a mapping/);
  });
});
