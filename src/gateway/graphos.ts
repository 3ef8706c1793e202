/**
 * GraphOS (Apollo Studio) reporting: off unless both `APOLLO_KEY` and `APOLLO_GRAPH_REF` are set,
 * as docs/design.md says of any outside service. Usage is then reported for every operation
 * (reporting is a plugin, so the prepared pipeline steps aside, see gateway.ts). Schema reporting
 * also needs `APOLLO_SCHEMA_REPORTING=true`, Apollo Server's own switch: a federated graph's schema
 * usually reaches GraphOS through `rover subgraph publish` instead.
 */
import type { ApolloServerPlugin, BaseContext } from '@apollo/server';
import {
  ApolloServerPluginSchemaReportingDisabled,
  ApolloServerPluginUsageReportingDisabled,
} from '@apollo/server/plugin/disabled';
import { ApolloServerPluginSchemaReporting } from '@apollo/server/plugin/schemaReporting';
import { ApolloServerPluginUsageReporting } from '@apollo/server/plugin/usageReporting';
import { ConfigError } from '../config/schema.js';
import { webUrl } from '../values.js';

export interface GraphOSReporting {
  /** The graph API key: a secret, only ever handed to Apollo's plugins. */
  readonly key: string;
  readonly graphRef: string;
  /** Overrides Apollo's ingress (a local collector, a test's fake endpoint); null: Apollo's default. */
  readonly usageEndpointUrl: string | null;
  readonly schemaReporting: boolean;
  readonly schemaEndpointUrl: string | null;
}

export const GRAPHOS_ENV = Object.freeze({
  key: 'APOLLO_KEY',
  graphRef: 'APOLLO_GRAPH_REF',
  schemaReporting: 'APOLLO_SCHEMA_REPORTING',
  usageEndpointUrl: 'APOLLO_USAGE_REPORTING_ENDPOINT_URL',
  schemaEndpointUrl: 'APOLLO_SCHEMA_REPORTING_ENDPOINT_URL',
});

function endpoint(env: NodeJS.ProcessEnv, name: string, problems: string[]): string | null {
  const value = env[name]?.trim();
  if (!value) return null;
  const url = webUrl(value, true);
  // Apollo appends its path to the usage endpoint: no trailing slash.
  if (url !== null) return url.href.replace(/\/+$/, '');
  problems.push(`${name} must be an http(s) URL`);
  return null;
}

/** Null (reporting off) unless both the key and the graph ref are set. */
export function graphosFromEnv(env: NodeJS.ProcessEnv): GraphOSReporting | null {
  const key = env[GRAPHOS_ENV.key]?.trim();
  const graphRef = env[GRAPHOS_ENV.graphRef]?.trim();
  if (!key || !graphRef) return null;
  const problems: string[] = [];
  const usageEndpointUrl = endpoint(env, GRAPHOS_ENV.usageEndpointUrl, problems);
  const schemaEndpointUrl = endpoint(env, GRAPHOS_ENV.schemaEndpointUrl, problems);
  const schemaFlag = env[GRAPHOS_ENV.schemaReporting] ?? '';
  if (!['', 'true', 'false'].includes(schemaFlag))
    problems.push(`${GRAPHOS_ENV.schemaReporting} must be true or false`);
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze({ key, graphRef, usageEndpointUrl, schemaReporting: schemaFlag === 'true', schemaEndpointUrl });
}

/** Apollo Server's reporting plugins as `graphos` says: the disabled ones when it is null. */
export function reportingPlugins<T extends BaseContext>(graphos: GraphOSReporting | null): ApolloServerPlugin<T>[] {
  if (!graphos) return [ApolloServerPluginUsageReportingDisabled(), ApolloServerPluginSchemaReportingDisabled()];
  return [
    ApolloServerPluginUsageReporting<T>({ ...(graphos.usageEndpointUrl && { endpointUrl: graphos.usageEndpointUrl }) }),
    graphos.schemaReporting
      ? ApolloServerPluginSchemaReporting({
          ...(graphos.schemaEndpointUrl && { endpointUrl: graphos.schemaEndpointUrl }),
        })
      : ApolloServerPluginSchemaReportingDisabled(),
  ];
}
