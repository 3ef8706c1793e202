/** The README documents every configuration key (with its environment variable) and every error code. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CONFIG_KEYS, envNameOf } from '../src/config/schema.js';
import { MANAGEMENT_CODES, RUNTIME_CODES } from '../src/errors.js';

const README = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

describe('README', () => {
  it.each(CONFIG_KEYS.map((k) => [k.path, envNameOf(k.path)]))('documents %s as %s', (path, env) => {
    expect(README).toContain(`| \`${path}\` | \`${env}\` |`);
  });

  it.each([...new Set([...RUNTIME_CODES, ...MANAGEMENT_CODES])])('names the error code %s', (code) => {
    expect(README).toContain(`\`${code}\``);
  });

  it('opens with the two commands a newcomer needs', () => {
    expect(README.split('\n').slice(0, 6).join('\n')).toMatch(/npm ci && npm start[\s\S]*npm test/);
  });
});
