/**
 * The admin resolver types are generated from schema/admin.graphql and committed (see
 * docs/design.md "Generated code"); these tests keep the committed file equal to what the
 * generator makes now, and the resolvers typed by it.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { generate } from '@graphql-codegen/cli';
import { describe, expect, it } from 'vitest';
import config, { ADMIN_TYPES } from '../../codegen.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** What `generate` returns without writing (its declared result is `any` because of watch mode). */
interface GeneratedFile {
  readonly filename: string;
  readonly content: string;
}

describe('generated admin resolver types', () => {
  it('are what `npm run codegen` makes from the current schema/admin.graphql', async () => {
    const outputs: readonly GeneratedFile[] = await generate({ ...config, cwd: ROOT, silent: true }, false);
    const generated = outputs.find((o) => o.filename.endsWith(ADMIN_TYPES));
    expect(generated, `codegen made no ${ADMIN_TYPES}`).toBeDefined();
    const committed = readFileSync(new URL(ADMIN_TYPES, `file://${ROOT}`), 'utf8');
    expect(committed === generated?.content, `${ADMIN_TYPES} is stale: run npm run codegen`).toBe(true);
  });

  it('type every admin resolver: no untyped `any` arguments, the map declared as Resolvers', () => {
    const dir = new URL('src/admin/', `file://${ROOT}`);
    const sources = readdirSync(dir)
      .filter((name) => name.endsWith('.ts'))
      .map((name) => ({ name, text: readFileSync(new URL(name, dir), 'utf8') }));
    for (const { name, text } of sources) expect(text, name).not.toMatch(/Record<string,\s*any>|:\s*any\b|\bas any\b/);
    const resolvers = sources.find((s) => s.name === 'resolvers.ts')?.text;
    expect(resolvers).toMatch(/export const adminResolvers: Resolvers = \{/);
  });
});
