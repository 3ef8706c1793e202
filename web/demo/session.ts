/** Demo sign-in: the demo gateway mints a short-lived JWT for alice or bob (POST /demo/session). */
export const DEMO_USERS = ['alice', 'bob'] as const;
export type DemoUser = (typeof DEMO_USERS)[number];

export interface DemoSession {
  readonly user: DemoUser;
  readonly jwt: string;
  readonly issuer: string;
  readonly expiresAt: string;
}

/** Renewed this long before it expires, so a query never goes out with a stale JWT. */
const RENEW_BEFORE_MS = 60_000;

export function isFresh(session: DemoSession | null, user: DemoUser): session is DemoSession {
  return session !== null && session.user === user && Date.parse(session.expiresAt) - Date.now() > RENEW_BEFORE_MS;
}

export async function signIn(user: DemoUser): Promise<DemoSession> {
  const res = await fetch('/demo/session', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ user }),
  });
  if (!res.ok) throw new Error(`sign-in failed: HTTP ${res.status}`);
  return (await res.json()) as DemoSession;
}
