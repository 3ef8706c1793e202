/** The federated query: GitHub's viewer extended by Microsoft Graph, and the token each subgraph saw. */
import { gql, type TypedDocumentNode } from '@apollo/client';

export interface TokenInfo {
  readonly issuer: string;
  readonly audience: readonly string[];
  readonly subject: string;
}

/** The viewer twice, under two aliases: a failing Graph part then leaves GitHub's part standing. */
export interface DemoData {
  readonly github: {
    readonly login: string;
    readonly repositories: readonly { readonly name: string; readonly stars: number }[];
  } | null;
  readonly graph: {
    readonly profile: { readonly displayName: string; readonly mail: string };
    readonly mail: readonly { readonly subject: string; readonly from: string }[];
  } | null;
  readonly githubTokenInfo: TokenInfo | null;
  readonly graphTokenInfo: TokenInfo | null;
}

export const DEMO_QUERY: TypedDocumentNode<DemoData> = gql`
  query Demo {
    github: viewer {
      login
      repositories {
        name
        stars
      }
    }
    graph: viewer {
      profile {
        displayName
        mail
      }
      mail(first: 2) {
        subject
        from
      }
    }
    githubTokenInfo {
      issuer
      audience
      subject
    }
    graphTokenInfo {
      issuer
      audience
      subject
    }
  }
`;
