import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { CONFIG_KEYS, ConfigError, envNameOf, setPath, validateConfig, type Config } from './schema.js';
import { isRecord } from '../values.js';

/** The config file named by `--config FILE` or `CONFIG`; null means embedded defaults. */
export function configPathFrom(argv: readonly string[], env: NodeJS.ProcessEnv): string | null {
  const i = argv.indexOf('--config');
  if (i >= 0) {
    const file = argv[i + 1];
    if (!file) throw new ConfigError(['--config needs a file path']);
    return file;
  }
  const eq = argv.find((a) => a.startsWith('--config='));
  if (eq) return eq.slice('--config='.length);
  return env['CONFIG'] || null;
}

/** Parses YAML text into a raw object; errors name the file and line. */
export function parseConfigText(text: string, source: string): unknown {
  try {
    return parseYaml(text, { prettyErrors: true, maxAliasCount: 100 }) ?? {};
  } catch (e) {
    throw new ConfigError([`${source}: ${(e as Error).message.split('\n')[0]}`]);
  }
}

/** Overlays `CG_*` environment variables (one per key) onto the raw object. */
export function applyEnv(raw: unknown, env: NodeJS.ProcessEnv): unknown {
  const out: Record<string, unknown> = isRecord(raw) ? structuredClone(raw) : {};
  for (const spec of CONFIG_KEYS) {
    const value = env[envNameOf(spec.path)];
    if (value !== undefined) setPath(out, spec.path, value);
  }
  return out;
}

export function loadConfig(
  argv: readonly string[] = process.argv.slice(2),
  env: NodeJS.ProcessEnv = process.env,
): Config {
  const file = configPathFrom(argv, env);
  let raw: unknown = {};
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      throw new ConfigError([`cannot read config file ${file}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`]);
    }
    raw = parseConfigText(text, file);
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
      throw new ConfigError([`${file}: the configuration must be a mapping`]);
  }
  return validateConfig(applyEnv(raw, env));
}
