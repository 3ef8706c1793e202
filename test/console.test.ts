/**
 * The admin console at /console in real Chromium against the real gateway and a real OpenID
 * Connect provider: every flow an admin has, through the public /admin/graphql only, with no
 * secret in the page, in sessionStorage (beyond the admin's own key) or in any response.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser, Page, Response } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WEB_CONTENT_SECURITY_POLICY } from '../src/server/webApps.js';
import { ADMIN_KEY, startTestApp, type TestApp } from './support/app.js';
import { startAuthServer, type AuthServer } from './support/authServer.js';
import { chromiumAvailable, completeConsent, launchBrowser } from './support/browser.js';
import { startJwtIssuer, type JwtIssuer } from './support/jwtIssuer.js';
import { openPage, type WebPage } from './support/web.js';

const PROVIDER_SECRET = 'console-provider-secret-5d8e1f0a7c';
const FIRST_API_KEY = 'console-first-api-key-3f9a0c2e71';
const ROTATED_API_KEY = 'console-rotated-api-key-8b4d6e1f05';
const BASIC_PASSWORD = 'console-basic-password-6c1e9d7a42';
const ROTATED_PASSWORD = 'console-rotated-password-0f5b3a8c96';
/** A JWT anywhere in a response would be a token (the console signs in with an API key here). */
const JWT_SHAPE = /eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+/;
const STEP_MS = 15_000;

const section = (page: Page, name: string) =>
  page.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name });
/** Controls without an accessible name: a label, aria-label(ledby), or (buttons, links) their text. */
const unlabelled = (page: Page) =>
  page.evaluate<string[]>(`[...document.querySelectorAll('input, select, textarea, button, a[href]')]
    .filter((el) => !(el.labels && el.labels.length > 0) && !el.getAttribute('aria-label') && !el.getAttribute('aria-labelledby')
      && !((el.tagName === 'BUTTON' || el.tagName === 'A') && el.textContent.trim() !== ''))
    .map((el) => el.outerHTML.slice(0, 120))`);
const fieldError = (page: Page, field: string) => page.locator(`.field-error[data-field="${field}"]`);

describe('the console route', () => {
  it('answers 404 with console.enabled: false', async () => {
    const t = await startTestApp({ console: { enabled: false } });
    try {
      const res = await fetch(`${t.url}/console`);
      expect(res.status).toBe(404);
      expect(await res.text()).not.toContain('<div id="root">');
    } finally {
      await t.close();
    }
  });

  it('is served by default with the strict Content-Security-Policy and no framing', async () => {
    const t = await startTestApp();
    try {
      const res = await fetch(`${t.url}/console`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-security-policy')).toBe(WEB_CONTENT_SECURITY_POLICY);
      expect(res.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
      expect(res.headers.get('x-frame-options')).toBe('DENY');
      const html = await res.text();
      expect(html).toContain('<div id="root">');
      expect(html).not.toMatch(/<script\b[^>]*>[^<\s]|<style\b|\sstyle=/);
    } finally {
      await t.close();
    }
  });
});

describe.runIf(process.env['CI'] === 'true' || chromiumAvailable())('the admin console in Chromium', () => {
  let auth: AuthServer;
  let t: TestApp;
  let browser: Browser;
  let view: WebPage;
  let page: Page;
  const bodies: { url: string; body: string }[] = [];
  const pending: Promise<void>[] = [];

  beforeAll(async () => {
    [auth, t, browser] = await Promise.all([startAuthServer(), startTestApp(), launchBrowser()]);
    view = await openPage(browser);
    page = view.page;
    page.setDefaultTimeout(STEP_MS);
    page.on('response', (res: Response) => {
      pending.push(
        res.text().then(
          (body) => void bodies.push({ url: res.url(), body }),
          () => undefined,
        ),
      );
    });
  }, 60_000);

  afterAll(async () => {
    await view?.close();
    await browser?.close();
    await t?.close();
    await auth?.close();
  });

  it('refuses a wrong API key with a clear sign-in error', async () => {
    await page.goto(`${t.url}/console`, { waitUntil: 'networkidle' });
    expect(await unlabelled(page)).toEqual([]);
    await page.getByLabel('Admin API key').fill('cgk_wrong-key-000000000000000000000000');
    await page.getByRole('button', { name: 'Sign in' }).click();
    const alert = page.getByRole('alert');
    await expect(alert.textContent()).resolves.toContain('The gateway did not accept this API key');
    await expect(alert.textContent()).resolves.toContain('invalid admin API key');
    await view.screenshot('console-sign-in-error');
    expect(await page.evaluate<number>('sessionStorage.length')).toBe(0);
  });

  it('signs in with the admin API key and lists no providers yet', async () => {
    await page.getByLabel('Admin API key').fill(ADMIN_KEY);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Credential providers' }).waitFor();
    await page.getByText('No credential providers yet').waitFor();
    const keys = await page.evaluate<string[]>('Object.keys(sessionStorage)');
    expect(keys).toEqual(['credential-gateway.console.credential']);
    expect(await page.evaluate<number>('localStorage.length')).toBe(0);
    expect((await page.context().cookies()).length).toBe(0);
  });

  it('shows a BAD_USER_INPUT next to the field it names, then creates a provider from the catalog form', async () => {
    await page.getByRole('link', { name: 'New provider' }).click();
    await page.getByLabel('Identity provider').selectOption('oidc');
    await page.getByLabel(/^Provider id/).fill('bad id');
    await page.getByLabel('Display name').fill('Corporate SSO');
    await page.getByLabel(/^Client id/).fill(auth.clients.web.clientId);
    await page.getByLabel('Client secret').fill(auth.clients.web.clientSecret);
    await page.getByLabel('Scopes').fill(['openid', 'offline_access', ...auth.apiScopes].join(' '));
    await page.getByLabel(/^issuer/).fill(auth.issuer);
    await page.getByRole('button', { name: 'Create provider' }).click();
    const idError = fieldError(page, 'input.id');
    await expect(idError.textContent()).resolves.toContain('input.id must be 1-256 characters without');
    expect(await page.getByLabel(/^Provider id/).getAttribute('aria-invalid')).toBe('true');

    await view.screenshot('console-provider-form-error');
    expect(await unlabelled(page)).toEqual([]);
    await page.getByLabel(/^Provider id/).fill('corp-sso');
    await page.getByRole('button', { name: 'Create provider' }).click();
    await page.getByRole('heading', { name: 'Corporate SSO' }).waitFor();
    const redirect = page.getByLabel('Redirect URL to register at the identity provider');
    expect(await redirect.inputValue()).toBe(`${t.url}/oauth/callback`);
    await page.getByRole('button', { name: /^Copy Redirect URL/ }).click();
    await page.getByText(/Copied to the clipboard|Selected: press Ctrl\+C/).waitFor();
    await page.getByText('Set (never shown)').waitFor();
  });

  it('creates a connection, consents through a login link in a second page and sees CONNECTED without a reload', async () => {
    await page.getByText('New connection').click();
    await page.getByLabel(/^Connection id/).fill('alice');
    await page.getByRole('button', { name: 'Create connection' }).click();
    await page.getByRole('heading', { name: 'alice' }).waitFor();
    const status = page.getByTestId('connection-status');
    await expect(status.textContent()).resolves.toContain('Not connected');

    await page.getByRole('button', { name: 'Create login link' }).click();
    const link = await page.getByRole('textbox', { name: 'Login link to send to the user' }).inputValue();
    expect(link).toContain(`${t.url}/oauth/login/`);
    await expect(page.getByTestId('link-state').textContent()).resolves.toContain('Not opened yet');
    await page.getByText(/^Expires /).waitFor();

    const landed = await completeConsent(browser, link, { login: 'alice' });
    expect(landed.pathname).toBe('/oauth/done');
    await page.locator('[data-testid="connection-status"] [data-status="CONNECTED"]').waitFor();
    await page.getByTestId('link-state').getByText('Used').waitFor();
    await view.screenshot('console-connection');
  });

  it('tests the connection and shows the outcome', async () => {
    expect(await unlabelled(page)).toEqual([]);
    await page.getByRole('button', { name: 'Test connection' }).click();
    const result = page.getByTestId('test-result');
    await result.getByText('Test passed').waitFor();
    await expect(result.textContent()).resolves.toContain('token valid until');
  });

  it('adds policies of every kind with an issuer, shows a bad issuer next to its field, and removes one', async () => {
    const add = async (
      id: string,
      kind: string,
      objectId: string,
      extra: { tenant?: string; appIds?: string; issuer?: string } = {},
    ) => {
      await page.getByLabel(/^Policy id/).fill(id);
      await page.getByLabel('Kind').selectOption(kind);
      await page.getByLabel(/^Object id/).fill(objectId);
      await page.getByLabel('Tenant id').fill(extra.tenant ?? '');
      await page.getByLabel('App ids').fill(extra.appIds ?? '');
      await page.getByLabel('Issuer', { exact: true }).fill(extra.issuer ?? '');
      await page.getByRole('button', { name: 'Add policy' }).click();
    };
    await add('bad-issuer', 'USER', 'bob', { issuer: 'not a url' });
    await expect(fieldError(page, 'input.issuer').textContent()).resolves.toContain(
      'input.issuer must be the issuer URL',
    );

    await add('bob', 'USER', 'bob', { tenant: 't1', issuer: auth.issuer });
    await page.locator('tr[data-policy="bob"]').waitFor();
    await add('admins', 'GROUP', 'group-admins');
    await page.locator('tr[data-policy="admins"]').waitFor();
    await add('batch', 'SERVICE_PRINCIPAL', 'batch-app', { appIds: 'app-1, app-2' });
    await page.locator('tr[data-policy="batch"]').waitFor();
    await expect(page.locator('tr[data-policy="bob"]').textContent()).resolves.toContain(auth.issuer);
    await expect(page.locator('tr[data-policy="batch"]').textContent()).resolves.toContain('app-1, app-2');
    await expect(fieldError(page, 'input.issuer').count()).resolves.toBe(0);

    await page.getByRole('button', { name: 'Remove policy admins' }).click();
    await page.locator('tr[data-policy="admins"]').waitFor({ state: 'detached' });
    const policies = await t.admin(
      `{ connection(providerId: "corp-sso", id: "alice") { accessPolicies { id issuer } } }`,
    );
    expect(policies.body.data.connection.accessPolicies.map((p: { id: string }) => p.id).sort()).toEqual(
      ['batch', 'bob', 'managed-identity'].sort(),
    );
  });

  it('creates a client-credentials provider and a connection with its own client, which tests CONNECTED with no login link', async () => {
    await page.goto(`${t.url}/console#/providers/new`);
    await page.getByLabel('Identity provider').selectOption('oidc');
    await page.getByLabel('Grant type').selectOption('CLIENT_CREDENTIALS');
    await page.getByLabel(/^Provider id/).fill('svc');
    await page.getByLabel(/^Client id/).fill('provider-level-client');
    await page.getByLabel('Client secret').fill(PROVIDER_SECRET);
    await page.getByLabel('Scopes').fill(auth.apiScopes.join(' '));
    await page.getByLabel(/^issuer/).fill(auth.issuer);
    await page.getByRole('button', { name: 'Create provider' }).click();
    await page.getByRole('heading', { name: 'svc' }).waitFor();
    // No consent, so no redirect URL to register.
    await expect(page.getByLabel('Redirect URL to register at the identity provider').count()).resolves.toBe(0);
    await page.getByText('New connection').click();
    await page.getByLabel(/^Connection id/).fill('daemon');
    await page.getByLabel('Client id of this connection').fill(auth.clients.service.clientId);
    await page.getByLabel('Client secret of this connection').fill(auth.clients.service.clientSecret);
    await page.getByRole('button', { name: 'Create connection' }).click();
    await page.getByRole('heading', { name: 'daemon' }).waitFor();
    await page.locator('[data-testid="connection-status"] [data-status="CONNECTED"]').waitFor();
    await expect(page.getByRole('heading', { name: 'Login link' }).count()).resolves.toBe(0);
    await page.getByText('Set (never shown)').waitFor();
    await page.getByRole('button', { name: 'Test connection' }).click();
    await page.getByTestId('test-result').getByText('Test passed').waitFor();
  });

  it('creates an API-key provider with no client, a connection CONNECTED with its key set, rotates the key and says it cannot be tested', async () => {
    await page.goto(`${t.url}/console#/providers/new`);
    await page.getByLabel('Identity provider').selectOption('apikey');
    expect(await page.getByLabel('Grant type').inputValue()).toBe('API_KEY');
    // No OAuth client: the API refuses one for API_KEY providers, so the form asks for none.
    await expect(page.getByLabel(/^Client id/).count()).resolves.toBe(0);
    await expect(page.getByLabel('Client secret').count()).resolves.toBe(0);
    await page.getByTestId('no-client').getByText('each connection holds an API key').waitFor();
    await page.getByLabel(/^Provider id/).fill('internal-keys');
    await page.getByLabel(/^headerName/).fill('X-API-Key');
    await page.getByLabel(/^scheme/).fill('none');
    expect(await unlabelled(page)).toEqual([]);
    await view.screenshot('console-apikey-provider-form');
    await page.getByRole('button', { name: 'Create provider' }).click();
    await page.getByRole('heading', { name: 'internal-keys' }).waitFor();
    await page.getByText('None: each connection holds an API key').waitFor();

    await page.getByText('New connection').click();
    const key = page.getByLabel(/^API key/);
    expect(await key.getAttribute('type')).toBe('password');
    await page.getByLabel(/^Connection id/).fill('ops');
    await page.getByRole('button', { name: 'Create connection' }).click();
    await expect(fieldError(page, 'input.apiKey').textContent()).resolves.toContain('input.apiKey is required');
    await key.fill(FIRST_API_KEY);
    await page.getByRole('button', { name: 'Create connection' }).click();
    await page.getByRole('heading', { name: 'ops' }).waitFor();
    await page.locator('[data-testid="connection-status"] [data-status="CONNECTED"]').waitFor();
    await expect(page.getByTestId('credential-state').textContent()).resolves.toContain(
      'Credential: set (never shown)',
    );
    await expect(
      page
        .getByRole('definition')
        .filter({ hasText: /^never$/ })
        .count(),
    ).resolves.toBeGreaterThanOrEqual(1);
    // No consent for an API key, so no login link.
    await expect(page.getByRole('heading', { name: 'Login link' }).count()).resolves.toBe(0);
    expect(await unlabelled(page)).toEqual([]);
    await view.screenshot('console-apikey-connection');

    const before = (await t.admin(`{ connection(providerId: "internal-keys", id: "ops") { version hasCredential } }`))
      .body.data.connection;
    expect(before.hasCredential).toBe(true);
    await page.getByLabel(/^New API key/).fill('has a space');
    await page.getByRole('button', { name: 'Rotate API key' }).click();
    await expect(fieldError(page, 'input.apiKey').textContent()).resolves.toContain('without whitespace');
    await page.getByLabel(/^New API key/).fill(ROTATED_API_KEY);
    await page.getByRole('button', { name: 'Rotate API key' }).click();
    await page.getByTestId('rotate-result').getByText('The API key was replaced').waitFor();
    expect(await page.getByLabel(/^New API key/).inputValue()).toBe('');
    expect(await page.content()).not.toContain(ROTATED_API_KEY);
    const after = (
      await t.admin(`{ connection(providerId: "internal-keys", id: "ops") { version status hasCredential } }`)
    ).body.data.connection;
    expect(after).toEqual({ version: expect.any(Number), status: 'CONNECTED', hasCredential: true });
    expect(after.version).toBeGreaterThan(before.version);

    await page.getByRole('button', { name: 'Test connection' }).click();
    const result = page.getByTestId('test-result');
    await result.getByText('cannot be tested (the catalog entry names no check URL)').waitFor();
    await expect(result.textContent()).resolves.toContain('NOT_TESTABLE');
    await expect(result.textContent()).resolves.not.toContain('Test passed');

    await page.getByRole('link', { name: 'internal-keys' }).click();
    const row = page.getByRole('row', { name: /ops/ });
    await expect(row.textContent()).resolves.toContain('Credential: set (never shown)');
    await expect(row.textContent()).resolves.toContain('never');
    const html = await page.content();
    for (const secret of [FIRST_API_KEY, ROTATED_API_KEY, 'has a space']) expect(html).not.toContain(secret);
  });

  it('shows CREDENTIAL_REJECTED when the check URL refuses the key', async () => {
    const refusing = createServer((_req, res) => res.writeHead(401).end());
    await new Promise<void>((resolve) => refusing.listen(0, '127.0.0.1', resolve));
    try {
      const checkUrl = `http://127.0.0.1:${(refusing.address() as AddressInfo).port}/v1/ping`;
      const created =
        await t.admin(`mutation { createCredentialProvider(input: { id: "checked-keys", identityProvider: "apikey", grantType: API_KEY,
        parameters: [{ name: "checkUrl", value: "${checkUrl}" }] }) { id } }`);
      expect(created.body.errors).toBeUndefined();
      expect(
        (
          await t.admin(
            `mutation { createConnection(providerId: "checked-keys", input: { id: "old", apiKey: "${FIRST_API_KEY}" }) { id } }`,
          )
        ).body.errors,
      ).toBeUndefined();
      await page.goto(`${t.url}/console#/providers/checked-keys/connections/old`);
      await page.getByRole('heading', { name: 'old' }).waitFor();
      await page.getByRole('button', { name: 'Test connection' }).click();
      const result = page.getByTestId('test-result');
      await result.getByText('Test failed').waitFor();
      await expect(result.textContent()).resolves.toContain('CREDENTIAL_REJECTED');
      await expect(result.textContent()).resolves.not.toContain('cannot be tested');
    } finally {
      await new Promise<void>((resolve) => refusing.close(() => resolve()));
    }
  });

  it('creates a basic provider and a connection with a username and password, rotated together', async () => {
    await page.goto(`${t.url}/console#/providers/new`);
    await page.getByLabel('Identity provider').selectOption('basic');
    expect(await page.getByLabel('Grant type').inputValue()).toBe('BASIC');
    await expect(page.getByLabel(/^Client id/).count()).resolves.toBe(0);
    await page.getByLabel(/^Provider id/).fill('legacy-basic');
    await page.getByRole('button', { name: 'Create provider' }).click();
    await page.getByRole('heading', { name: 'legacy-basic' }).waitFor();
    await page.getByText('New connection').click();
    await page.getByLabel(/^Connection id/).fill('batch');
    await page.getByLabel(/^Username/).fill('batch-user');
    expect(await page.getByLabel(/^Password/).getAttribute('type')).toBe('password');
    await page.getByLabel(/^Password/).fill(BASIC_PASSWORD);
    await page.getByRole('button', { name: 'Create connection' }).click();
    await page.getByRole('heading', { name: 'batch' }).waitFor();
    await page.locator('[data-testid="connection-status"] [data-status="CONNECTED"]').waitFor();
    await expect(page.getByTestId('credential-state').textContent()).resolves.toContain(
      'Credential: set (never shown)',
    );
    // The two are sealed together: a new password alone is refused, next to the username.
    await page.getByLabel(/^New password/).fill(ROTATED_PASSWORD);
    await page.getByRole('button', { name: 'Rotate password' }).click();
    await expect(fieldError(page, 'input.username').textContent()).resolves.toContain(
      'input.username is required with input.password',
    );
    await page.getByLabel(/^Username/).fill('batch-user');
    await page.getByLabel(/^New password/).fill(ROTATED_PASSWORD);
    await page.getByRole('button', { name: 'Rotate password' }).click();
    await page.getByTestId('rotate-result').getByText('The password was replaced').waitFor();
    expect(await unlabelled(page)).toEqual([]);
    const html = await page.content();
    for (const secret of [BASIC_PASSWORD, ROTATED_PASSWORD]) expect(html).not.toContain(secret);
  });

  it('lists providers with their connection counts by status', async () => {
    await section(page, 'Providers').click();
    const row = page.getByRole('row', { name: /Corporate SSO/ });
    await row.waitFor();
    await expect(row.textContent()).resolves.toContain('1 connected');
    await expect(row.textContent()).resolves.toContain('0 not connected');
    await view.screenshot('console-providers');
    await row.getByRole('link', { name: 'Corporate SSO' }).click();
    await page.getByRole('heading', { name: 'Connections' }).waitFor();
    await page.getByLabel('Show').selectOption('NOT_CONNECTED');
    await page.getByText('No connections in this status.').waitFor();
    await page.getByLabel('Show').selectOption('CONNECTED');
    await page.getByRole('link', { name: 'alice' }).waitFor();
    await view.screenshot('console-provider-connections');
  });

  it('rotates the keys and shows the progress, then retires the old key after a confirmation', async () => {
    await section(page, 'Encryption keys').click();
    await page.getByRole('heading', { name: 'Encryption keys' }).waitFor();
    expect(await page.title()).toBe('Encryption keys · Credential gateway console');
    expect(await page.evaluate<string>('document.activeElement?.textContent ?? ""')).toBe('Encryption keys');
    const oldKey = await page.locator('tr[data-key]').first().getAttribute('data-key');
    await page.getByRole('button', { name: 'Rotate keys' }).click();
    await page.locator('[data-testid="rotation-state"][data-state="DONE"]').waitFor();
    await expect(page.getByText(/Re-wrapped \d+ of \d+ secrets/).textContent()).resolves.toMatch(
      /Re-wrapped ([1-9]\d*) of \1 secrets/,
    );
    await view.screenshot('console-keys');
    expect(await unlabelled(page)).toEqual([]);
    await page.getByRole('button', { name: `Retire key ${oldKey}` }).click();
    const dialog = page.getByRole('dialog', { name: `Retire key ${oldKey}?` });
    await expect(dialog.textContent()).resolves.toContain('No stored secret uses this key');
    await dialog.getByRole('button', { name: `Retire ${oldKey}` }).click();
    await page.locator(`tr[data-key="${oldKey}"]`).waitFor({ state: 'detached' });
  });

  it("offers to reload and re-apply an edit after a version conflict, keeping the other admin's change", async () => {
    await page.goto(`${t.url}/console#/providers/corp-sso/edit`);
    await page.getByRole('heading', { name: 'Edit Corporate SSO' }).waitFor();
    await expect(page.getByText('A client secret is set (it is never shown)').count()).resolves.toBe(1);
    expect(await page.getByLabel('Client secret').inputValue()).toBe('');
    await page.getByLabel('Display name').fill('Corporate SSO (EU)');
    // Another admin changes the scopes meanwhile.
    const other = await t.admin(
      `mutation { updateCredentialProvider(id: "corp-sso", input: { scopes: ["openid", "offline_access", "profile"] }) { version } }`,
    );
    expect(other.body.errors).toBeUndefined();
    await page.getByRole('button', { name: 'Save changes' }).click();
    await page.getByText('VERSION_CONFLICT').waitFor();
    await view.screenshot('console-version-conflict');
    await page.getByRole('button', { name: 'Reload the provider and re-apply my changes' }).click();
    await page.getByRole('heading', { name: 'Corporate SSO (EU)' }).waitFor();
    const now = await t.admin(`{ credentialProvider(id: "corp-sso") { displayName scopes clientId hasClientSecret } }`);
    expect(now.body.data.credentialProvider).toEqual({
      displayName: 'Corporate SSO (EU)',
      scopes: ['openid', 'offline_access', 'profile'],
      clientId: auth.clients.web.clientId,
      hasClientSecret: true,
    });
  });

  it('deletes a provider after a confirmation that names what cascades, asking again after a version conflict', async () => {
    await t.admin(
      `mutation { createCredentialProvider(input: { id: "spare", identityProvider: "github", grantType: AUTHORIZATION_CODE, clientId: "gh", clientSecret: "${PROVIDER_SECRET}" }) { id } }`,
    );
    await t.admin(`mutation { createConnection(providerId: "spare", input: { id: "c1" }) { id } }`);
    await page.goto(`${t.url}/console#/providers/spare`);
    await page.getByRole('heading', { name: 'spare' }).waitFor();
    // Another admin renames it while it is on screen: the delete carries the version it showed.
    await t.admin(
      `mutation { updateCredentialProvider(id: "spare", input: { displayName: "Spare GitHub" }) { version } }`,
    );
    await page.getByRole('button', { name: 'Delete provider' }).click();
    let dialog = page.getByRole('dialog', { name: 'Delete provider spare?' });
    await expect(dialog.textContent()).resolves.toMatch(
      /1 connection, their access\s+policies and their stored tokens/,
    );
    await dialog.getByRole('button', { name: 'Delete spare and its 1 connection' }).click();
    await page.getByText('VERSION_CONFLICT').waitFor();
    expect((await t.admin(`{ credentialProvider(id: "spare") { id } }`)).body.data.credentialProvider).not.toBeNull();
    await page.getByRole('button', { name: 'Reload the provider and delete again' }).click();
    await page.getByRole('heading', { name: 'Spare GitHub' }).waitFor();
    dialog = page.getByRole('dialog', { name: 'Delete provider spare?' });
    await dialog.getByRole('button', { name: 'Delete spare and its 1 connection' }).click();
    await page.getByRole('heading', { name: 'Credential providers' }).waitFor();
    expect((await t.admin(`{ credentialProvider(id: "spare") { id } }`)).body.data.credentialProvider).toBeNull();
  });

  it('deletes a connection after a confirmation that names its policies', async () => {
    await t.admin(`mutation { createConnection(providerId: "corp-sso", input: { id: "temp" }) { id } }`);
    await page.goto(`${t.url}/console#/providers/corp-sso/connections/temp`);
    await page.getByRole('heading', { name: 'temp' }).waitFor();
    await page.getByRole('button', { name: 'Delete connection' }).click();
    const dialog = page.getByRole('dialog', { name: 'Delete connection temp?' });
    await expect(dialog.textContent()).resolves.toMatch(/1 access policy and its stored\s+tokens/);
    await dialog.getByRole('button', { name: 'Delete temp' }).click();
    await page.getByRole('heading', { name: 'Connections' }).waitFor();
    expect(
      (await t.admin(`{ connection(providerId: "corp-sso", id: "temp") { id } }`)).body.data.connection,
    ).toBeNull();
  });

  it('leaks no secret into the page, sessionStorage or any response, and signs out clearly', async () => {
    await page.goto(`${t.url}/console#/providers/corp-sso/connections/alice`);
    await page.locator('[data-testid="connection-status"] [data-status="CONNECTED"]').waitFor();
    const html = await page.content();
    const storage = await page.evaluate<string>('JSON.stringify(sessionStorage)');
    await Promise.all(pending);
    const secrets = [
      auth.clients.web.clientSecret,
      auth.clients.service.clientSecret,
      PROVIDER_SECRET,
      FIRST_API_KEY,
      ROTATED_API_KEY,
      BASIC_PASSWORD,
      ROTATED_PASSWORD,
    ];
    for (const secret of secrets) {
      expect(html).not.toContain(secret);
      expect(storage).not.toContain(secret);
      for (const { url, body } of bodies) expect(body, url).not.toContain(secret);
    }
    expect(bodies.some((b) => b.url.endsWith('/admin/graphql'))).toBe(true);
    for (const { url, body } of bodies) expect(body, url).not.toMatch(JWT_SHAPE);
    expect(html).not.toMatch(JWT_SHAPE);

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    expect(await page.evaluate<number>('sessionStorage.length')).toBe(0);
    expect(view.problems().filter((p) => !p.includes('401'))).toEqual([]);
    expect(view.blocked).toEqual([]);
  });
});

describe.runIf(process.env['CI'] === 'true' || chromiumAvailable())(
  'signing in to the console with an admin JWT',
  () => {
    let idp: JwtIssuer;
    let t: TestApp;
    let browser: Browser;

    beforeAll(async () => {
      idp = await startJwtIssuer();
      [t, browser] = await Promise.all([
        startTestApp({ identity: { issuers: [idp.issuerConfig()], clockToleranceSeconds: 0 } }),
        launchBrowser(),
      ]);
    }, 60_000);

    afterAll(async () => {
      await browser?.close();
      await t?.close();
      await idp?.close();
    });

    it('accepts an admin JWT and refuses a JWT without the admin role, from the keyboard alone with a visible focus', async () => {
      const view = await openPage(browser);
      try {
        const page = view.page;
        await page.goto(`${t.url}/console`, { waitUntil: 'networkidle' });
        const focused = () =>
          page.evaluate<string>(
            'document.activeElement?.getAttribute("name") ?? document.activeElement?.tagName ?? ""',
          );
        // Heading, then the radio group (one tab stop): the arrow key moves to "JWT".
        for (let i = 0; i < 4 && (await focused()) !== 'kind'; i++) await page.keyboard.press('Tab');
        expect(await focused()).toBe('kind');
        await page.keyboard.press('ArrowRight');
        expect(await page.getByRole('radio', { name: 'JWT' }).isChecked()).toBe(true);
        await page.keyboard.press('Tab');
        expect(await focused()).toBe('credential');
        expect(await page.evaluate<string>('getComputedStyle(document.activeElement).outlineStyle')).toBe('solid');
        await page.keyboard.type(await idp.sign({ sub: 'carol', roles: ['viewer'] }));
        await page.keyboard.press('Enter');
        await expect(page.getByRole('alert').textContent()).resolves.toContain('is valid but not an admin');
        await page.getByLabel('Admin JWT').fill(await idp.sign({ sub: 'carol', roles: ['credential-admin'] }));
        await page.keyboard.press('Enter');
        await page.getByRole('heading', { name: 'Credential providers' }).waitFor();
        await page.getByText('Signed in with an admin JWT').waitFor();
        // Focus moves to the new page's heading, so the next Tab reaches the page's first control.
        const active = () => page.evaluate<string>('document.activeElement?.textContent ?? ""');
        expect(await active()).toBe('Credential providers');
        await page.keyboard.press('Tab');
        expect(await active()).toBe('New provider');
        await page.keyboard.press('Enter');
        await page.getByRole('heading', { name: 'New credential provider' }).waitFor();
      } finally {
        await view.close();
      }
    });

    it('signs out with a clear notice once the gateway stops accepting the JWT', async () => {
      const view = await openPage(browser);
      try {
        const page = view.page;
        await page.goto(`${t.url}/console`, { waitUntil: 'networkidle' });
        await page.getByRole('radio', { name: 'JWT' }).check();
        await page
          .getByLabel('Admin JWT')
          .fill(await idp.sign({ sub: 'carol', roles: ['credential-admin'] }, { expiresIn: 2 }));
        await page.getByRole('button', { name: 'Sign in' }).click();
        await page.getByRole('heading', { name: 'Credential providers' }).waitFor();
        await new Promise((resolve) => setTimeout(resolve, 3_000));
        await section(page, 'Encryption keys').click();
        await page.getByText('The gateway no longer accepts your credential').waitFor();
        await page.getByRole('button', { name: 'Sign in' }).waitFor();
        expect(await page.evaluate<number>('sessionStorage.length')).toBe(0);
      } finally {
        await view.close();
      }
    });
  },
);

/** A loopback port nothing listens on: deliveries to it fail at once. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe.runIf(process.env['CI'] === 'true' || chromiumAvailable())('webhooks in the console', () => {
  let t: TestApp;
  let browser: Browser;

  beforeAll(async () => {
    [t, browser] = await Promise.all([
      startTestApp({ webhooks: { maxAttempts: 1, pollIntervalMs: 100, retryBaseMs: 100 } }),
      launchBrowser(),
    ]);
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await t?.close();
  });

  it('creates a webhook showing its signing secret once, lists its dead letters and deletes it after a confirmation', async () => {
    const view = await openPage(browser);
    try {
      const page = view.page;
      page.setDefaultTimeout(STEP_MS);
      await page.goto(`${t.url}/console`, { waitUntil: 'networkidle' });
      await page.getByLabel('Admin API key').fill(ADMIN_KEY);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await section(page, 'Webhooks').click();
      await page.getByRole('heading', { name: 'Webhooks' }).waitFor();
      await page.getByText('No webhooks yet.').waitFor();
      await page.getByText('New webhook').click();
      await page.getByLabel(/^Webhook id/).fill('ops-hook');
      await page.getByLabel(/^URL/).fill(`http://127.0.0.1:${await closedPort()}/hook`);
      await page.getByLabel('connection.deleted').uncheck();
      expect(await unlabelled(page)).toEqual([]);
      await page.getByRole('button', { name: 'Create webhook' }).click();

      const secretField = page.getByLabel('Signing secret of ops-hook');
      const secret = await secretField.inputValue();
      expect(secret).toMatch(/^whsec_/);
      await page.getByRole('button', { name: /^Copy Signing secret/ }).click();
      await page.getByText(/Copied to the clipboard|Selected: press Ctrl\+C/).waitFor();
      await view.screenshot('console-webhook-secret');
      await page.getByRole('button', { name: 'Done: I copied it' }).click();
      await secretField.waitFor({ state: 'detached' });
      const panel = page.locator('[data-webhook="ops-hook"]');
      await expect(panel.textContent()).resolves.toContain(
        'connection.created, connection.connected, connection.reauthorization_required',
      );
      await expect(panel.textContent()).resolves.not.toContain('connection.deleted');
      expect(await page.content()).not.toContain(secret);
      expect(await page.evaluate<string>('JSON.stringify(sessionStorage)')).not.toContain(secret);

      // A connection.created event to a receiver that is not there: one attempt, then a dead letter.
      const provider = `mutation { createCredentialProvider(input: { id: "offline", identityProvider: "oauth2", grantType: AUTHORIZATION_CODE, clientId: "c", clientSecret: "${PROVIDER_SECRET}",
        parameters: [{ name: "authorizationUrl", value: "https://idp.example/authorize" }, { name: "tokenUrl", value: "https://idp.example/token" }] }) { id } }`;
      expect((await t.admin(provider)).body.errors).toBeUndefined();
      expect(
        (await t.admin(`mutation { createConnection(providerId: "offline", input: { id: "c1" }) { id } }`)).body.errors,
      ).toBeUndefined();
      await expect
        .poll(
          async () => {
            await page.getByRole('button', { name: 'Refresh' }).click();
            return panel.getByTestId('dead-letter-count').textContent();
          },
          { timeout: STEP_MS },
        )
        .toContain('1: every attempt failed');
      await panel.getByRole('row', { name: /connection\.created/ }).waitFor();
      await view.screenshot('console-webhooks');

      await page.getByRole('button', { name: 'Delete webhook ops-hook' }).click();
      const dialog = page.getByRole('dialog', { name: 'Delete webhook ops-hook?' });
      await dialog.getByRole('button', { name: 'Delete ops-hook' }).click();
      await page.getByText('No webhooks yet.').waitFor();
      expect((await t.admin(`{ webhooks { id } }`)).body.data.webhooks).toEqual([]);
      expect(view.problems()).toEqual([]);
      expect(view.blocked).toEqual([]);
    } finally {
      await view.close();
    }
  });
});
