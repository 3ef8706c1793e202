/**
 * Composition of the subgraphs' SDL into the supergraph the gateway plans queries with, as
 * `rover supergraph compose` would. A subgraph that does not compose stops the (re)load.
 */
import { composeServices } from '@apollo/composition';
import { GraphQLError, parse, type DocumentNode } from 'graphql';
import { ConfigError } from '../config/schema.js';
import type { SupergraphConfig } from './supergraphConfig.js';

function codeOf(error: GraphQLError): string {
  const code = error.extensions['code'];
  return typeof code === 'string' ? code : 'COMPOSITION_ERROR';
}

/** The supergraph SDL; throws ConfigError listing each composition error with its code. */
export function composeSupergraph(config: SupergraphConfig): string {
  const problems: string[] = [];
  const services: { name: string; url: string; typeDefs: DocumentNode }[] = [];
  for (const subgraph of config.subgraphs) {
    try {
      services.push({ name: subgraph.name, url: subgraph.routingUrl, typeDefs: parse(subgraph.sdl) });
    } catch (e) {
      const message = e instanceof GraphQLError ? e.message : String(e);
      problems.push(
        `composition failed: [INVALID_GRAPHQL] subgraph ${subgraph.name} (${subgraph.schemaFile}): ${message}`,
      );
    }
  }
  if (problems.length === 0) {
    const result = composeServices(services);
    if (result.errors === undefined) return result.supergraphSdl;
    for (const error of result.errors) problems.push(`composition failed: [${codeOf(error)}] ${error.message}`);
  }
  throw new ConfigError(problems.map((p) => `${config.file}: ${p}`));
}
