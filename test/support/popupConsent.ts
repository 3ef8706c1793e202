/** Walks a consent popup through the authorization server's sign-in and allow pages. */
import type { Page } from 'playwright-core';

const STEP_TIMEOUT_MS = 15_000;

/** Signs in and allows on the authorization server's pages in the popup, until the kit closes it. */
export async function consentInPopup(popup: Page, login: string): Promise<void> {
  const closed = popup.waitForEvent('close', { timeout: STEP_TIMEOUT_MS });
  for (let step = 0; step < 4 && !popup.isClosed(); step += 1) {
    await popup
      .waitForSelector('body[data-interaction], body[data-consent]', { timeout: STEP_TIMEOUT_MS })
      .catch(() => null);
    if (popup.isClosed()) break;
    const interaction = await popup
      .locator('body')
      .getAttribute('data-interaction')
      .catch(() => null);
    if (interaction === 'login') {
      await popup.fill('#login', login);
      await popup.fill('#password', login);
      await Promise.all([
        popup.waitForNavigation({ timeout: STEP_TIMEOUT_MS }).catch(() => null),
        popup.click('#submit'),
      ]);
    } else if (interaction === 'consent') {
      await Promise.all([
        popup.waitForNavigation({ timeout: STEP_TIMEOUT_MS }).catch(() => null),
        popup.click('#confirm'),
      ]);
    } else break;
  }
  await closed;
}
