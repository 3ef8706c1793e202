/** Each subgraph's data and the token (issuer, audience, subject) that reached it, or why there is none. */
import type { ErrorLike } from '@apollo/client';
import { CombinedGraphQLErrors } from '@apollo/client/errors';
import type { DemoData } from './query';
import { SUBGRAPHS, type SubgraphView } from './subgraphs';

interface FieldError {
  readonly code: string;
  readonly message: string;
}

function errorsOf(error: ErrorLike | null): readonly { message: string; extensions?: Record<string, unknown> }[] {
  if (error === null) return [];
  if (CombinedGraphQLErrors.is(error)) return error.errors;
  return [{ message: error.message, extensions: { code: 'NETWORK_ERROR' } }];
}

function errorFor(view: SubgraphView, error: ErrorLike | null): FieldError | null {
  const found =
    errorsOf(error).find((e) => e.extensions?.['serviceName'] === view.name) ??
    errorsOf(error).find((e) => e.extensions?.['serviceName'] === undefined);
  return found ? { code: String(found.extensions?.['code'] ?? 'ERROR'), message: found.message } : null;
}

const EMPTY: DemoData = { github: null, graph: null, githubTokenInfo: null, graphTokenInfo: null };

export function Results({ data, error }: { data: DemoData | null; error: ErrorLike | null }) {
  const d = data ?? EMPTY;
  return (
    <section aria-labelledby="results-title">
      <h2 id="results-title">3. What each subgraph returned</h2>
      <div className="cards">
        {SUBGRAPHS.map((view) => {
          const token = view.token(d);
          const problem = token ? null : errorFor(view, error);
          return (
            <article
              key={view.name}
              className={`card ${token ? 'ok' : 'bad'}`}
              aria-labelledby={`sg-${view.name}`}
              data-subgraph={view.name}
            >
              <h3 id={`sg-${view.name}`}>
                {view.provider} <span className="muted">(subgraph {view.name})</span>
              </h3>
              <p className="verdict">
                <span aria-hidden="true">{token ? '✔' : '✖'}</span>{' '}
                {token ? 'Called with the user’s own token' : 'No data'}
              </p>
              {token && (
                <dl className="token">
                  <dt>Token issuer</dt>
                  <dd>{token.issuer}</dd>
                  <dt>Audience</dt>
                  <dd>{token.audience.join(', ')}</dd>
                  <dt>Subject</dt>
                  <dd data-field="subject">{token.subject}</dd>
                </dl>
              )}
              {token && (
                <ul className="data">
                  {view.lines(d).map((line) => (
                    <li key={line}>{line}</li>
                  ))}
                </ul>
              )}
              {problem && (
                <p className="problem">
                  <code>{problem.code}</code> {problem.message.replace(/: open extensions\.loginUrl to consent$/, '')}
                </p>
              )}
            </article>
          );
        })}
      </div>
    </section>
  );
}
