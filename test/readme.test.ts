/**
 * The documentation keeps up with the code: docs/configuration.md lists every configuration key with
 * its environment variable, docs/security.md names every error code, and the README opens with the
 * two commands and stays a five-minute read.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CONFIG_KEYS, envNameOf } from '../src/config/schema.js';
import { MANAGEMENT_CODES, RUNTIME_CODES } from '../src/errors.js';

const README = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const CONFIGURATION = readFileSync(new URL('../docs/configuration.md', import.meta.url), 'utf8');
const ERROR_CODES = readFileSync(new URL('../docs/security.md', import.meta.url), 'utf8');
/** About five minutes of reading. */
const MAX_README_LINES = 250;

describe('README', () => {
  it.each(CONFIG_KEYS.map((k) => [k.path, envNameOf(k.path)]))('documents %s as %s', (path, env) => {
    expect(CONFIGURATION).toContain(`| \`${path}\` | \`${env}\` |`);
  });

  it.each([...new Set([...RUNTIME_CODES, ...MANAGEMENT_CODES])])('names the error code %s', (code) => {
    expect(ERROR_CODES).toContain(`\`${code}\``);
  });

  it(`stays under ${MAX_README_LINES} lines`, () => {
    expect(README.split('\n').length).toBeLessThanOrEqual(MAX_README_LINES);
  });

  it('opens with the two commands a newcomer needs', () => {
    expect(README.split('\n').slice(0, 6).join('\n')).toMatch(/npm ci && npm start[\s\S]*npm test/);
  });

  it.each([
    'README.md',
    ...readdirSync(new URL('../docs/', import.meta.url))
      .filter((f) => f.endsWith('.md'))
      .map((f) => `docs/${f}`),
  ])('links only to files that exist, from %s', (file) => {
    const text = readFileSync(new URL(`../${file}`, import.meta.url), 'utf8');
    const base = new URL(`../${file}`, import.meta.url);
    const missing = [...text.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)]
      .map((m) => m[1]!)
      .filter((target) => !/^[a-z]+:/.test(target))
      .filter((target) => !existsSync(new URL(target, base)));
    expect(missing).toEqual([]);
  });
});
