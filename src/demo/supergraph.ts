/**
 * The demo serves the repository's supergraph.yaml: its routing URLs say where the sample
 * subgraphs listen and its bindings name the demo's providers. When the demo is moved to other
 * ports, a copy with those routing URLs (and absolute schema paths) is written to a temp dir.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseDocument } from 'yaml';
import { ConfigError } from '../config/schema.js';
import { findSubgraph, loadSupergraphConfig, type SupergraphConfig } from '../gateway/supergraphConfig.js';

export const REPO_SUPERGRAPH_FILE = fileURLToPath(new URL('../../supergraph.yaml', import.meta.url));

export const SAMPLE_SUBGRAPH_NAMES = Object.freeze(['github', 'graph'] as const);
export type SampleSubgraphName = (typeof SAMPLE_SUBGRAPH_NAMES)[number];

export interface SampleSubgraph {
  readonly name: SampleSubgraphName;
  /** The port of its routing URL. */
  readonly port: number;
  /** The credential provider its binding names. */
  readonly providerId: string;
}

export interface DemoSupergraph {
  readonly config: SupergraphConfig;
  readonly subgraphs: Readonly<Record<SampleSubgraphName, SampleSubgraph>>;
}

function defaultPort(url: URL): number {
  if (url.port !== '') return Number(url.port);
  return url.protocol === 'https:' ? 443 : 80;
}

/** Reads supergraph.yaml and finds the two sample subgraphs and their providers. */
export async function loadDemoSupergraph(file = REPO_SUPERGRAPH_FILE): Promise<DemoSupergraph> {
  const config = await loadSupergraphConfig(file);
  const problems: string[] = [];
  const entries = SAMPLE_SUBGRAPH_NAMES.map((name): [SampleSubgraphName, SampleSubgraph] | null => {
    const subgraph = findSubgraph(config, name);
    if (!subgraph?.authorization) {
      problems.push(`${config.file}: the demo needs subgraph '${name}' with an authorization binding`);
      return null;
    }
    const port = defaultPort(new URL(subgraph.routingUrl));
    return [name, Object.freeze({ name, port, providerId: subgraph.authorization.providerId })];
  });
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze({
    config,
    subgraphs: Object.freeze(
      Object.fromEntries(entries as [SampleSubgraphName, SampleSubgraph][]),
    ) as DemoSupergraph['subgraphs'],
  });
}

export interface SupergraphFile {
  readonly path: string;
  /** Removes the copy, if one was written. */
  cleanup(): Promise<void>;
}

/** The file to serve: the original when the sample subgraphs listen where it says, else a rewritten copy. */
export async function supergraphFileFor(
  demo: DemoSupergraph,
  routingUrls: Readonly<Record<SampleSubgraphName, string>>,
): Promise<SupergraphFile> {
  const unchanged = SAMPLE_SUBGRAPH_NAMES.every(
    (name) => findSubgraph(demo.config, name)?.routingUrl === routingUrls[name],
  );
  if (unchanged) return Object.freeze({ path: demo.config.file, cleanup: async () => {} });

  const doc = parseDocument(await readFile(demo.config.file, 'utf8'));
  for (const subgraph of demo.config.subgraphs) {
    // The copy lives elsewhere: relative schema paths would no longer resolve.
    doc.setIn(['subgraphs', subgraph.name, 'schema'], doc.createNode({ file: subgraph.schemaFile }));
  }
  for (const name of SAMPLE_SUBGRAPH_NAMES) doc.setIn(['subgraphs', name, 'routing_url'], routingUrls[name]);
  const dir = await mkdtemp(join(tmpdir(), 'cg-demo-'));
  const path = join(dir, 'supergraph.yaml');
  await writeFile(path, doc.toString());
  return Object.freeze({ path, cleanup: () => rm(dir, { recursive: true, force: true }) });
}
