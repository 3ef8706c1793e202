/** What the demo shows of each subgraph: its data and the token it received. */
import type { DemoData, TokenInfo } from './query';

export interface SubgraphView {
  readonly name: string;
  readonly provider: string;
  token(data: DemoData): TokenInfo | null;
  /** One line per item of the subgraph's own data. */
  lines(data: DemoData): readonly string[];
}

export const SUBGRAPHS: readonly SubgraphView[] = [
  {
    name: 'github',
    provider: 'Demo GitHub',
    token: (d) => d.githubTokenInfo,
    lines: (d) =>
      d.github
        ? [`login ${d.github.login}`, ...d.github.repositories.map((r) => `repository ${r.name} (${r.stars} stars)`)]
        : [],
  },
  {
    name: 'graph',
    provider: 'Demo Microsoft Graph',
    token: (d) => d.graphTokenInfo,
    lines: (d) =>
      d.graph
        ? [
            `profile ${d.graph.profile.displayName} <${d.graph.profile.mail}>`,
            ...d.graph.mail.map((m) => `mail “${m.subject}” from ${m.from}`),
          ]
        : [],
  },
];
