/**
 * The owner's half of a runtime consent: the browser ends on the post-login page with
 * `consent=<id>`, and the connection's owner confirms it with their own JWT.
 *
 *   const landed = await consentOverHttp(loginUrl, { login: 'alice' });
 *   await confirmConsent(gatewayUrl, landed, aliceJwt); // 200 {providerId, connectionId, status: 'CONNECTED'}
 */

/** The consent id a runtime consent ended with; throws, with where the browser ended, when there is none. */
export function consentIdOf(landed: URL): string {
  const id = landed.searchParams.get('consent');
  if (id === null)
    throw new Error(`expected a pending consent, the browser ended at ${landed.pathname}${landed.search}`);
  return id;
}

export interface ConfirmAnswer {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

/** POST /oauth/confirm with `{consent}` (an id, or the URL the browser ended on) and an optional bearer JWT. */
export async function confirmConsent(
  gatewayUrl: string,
  consent: URL | string,
  jwt: string | null,
): Promise<ConfirmAnswer> {
  const res = await fetch(`${gatewayUrl}/oauth/confirm`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(jwt !== null && { authorization: `Bearer ${jwt}` }) },
    body: JSON.stringify({ consent: typeof consent === 'string' ? consent : consentIdOf(consent) }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** Confirms as the owner and insists on success. */
export async function confirmAsOwner(gatewayUrl: string, landed: URL, jwt: string): Promise<void> {
  const answer = await confirmConsent(gatewayUrl, landed, jwt);
  if (answer.status !== 200 || answer.body['status'] !== 'CONNECTED')
    throw new Error(`confirming the consent failed: ${answer.status} ${JSON.stringify(answer.body)}`);
}
