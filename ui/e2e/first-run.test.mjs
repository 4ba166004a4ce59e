import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PASSWORD, apiCall, launch, startServer, uiOrigin } from './lib.mjs';
import { checkA11y, shoot } from './shots.mjs';

test('first run: create the superadmin with the setup code, sign out and in, a 401 returns to sign-in and back', { timeout: 120_000 }, async () => {
  const server = await startServer({ name: 'first-run' });
  const ui = await uiOrigin(server);
  const browser = await launch();
  try {
    assert.ok(server.setupCode, 'casewire serve printed a setup code');
    const page = await browser.context.newPage();
    await page.goto(`${ui.url}/#/cases`);
    await page.getByRole('heading', { name: 'Set up Casewire' }).waitFor();
    for (const scheme of ['light', 'dark']) {
      await page.emulateMedia({ colorScheme: scheme });
      await checkA11y(page, `setup-${scheme}`);
      await shoot(page, 'setup', scheme);
    }
    await page.emulateMedia({ colorScheme: 'light' });

    await page.getByLabel('Username').fill('root');
    await page.getByRole('textbox', { name: 'Password', exact: true }).fill(PASSWORD);
    await page.getByLabel('Password again').fill('something else!!');
    await page.getByRole('button', { name: 'Create superadmin and sign in' }).click();
    await page.getByText('The two passwords differ.').waitFor();

    await page.getByLabel('Password again').fill(PASSWORD);
    await page.getByLabel('Setup code').fill('AAAA-0000');
    await page.getByRole('button', { name: 'Create superadmin and sign in' }).click();
    await page.locator('[data-error-code="setup_code_invalid"]').waitFor();

    await page.getByLabel('Setup code').fill(server.setupCode);
    await page.getByRole('button', { name: 'Create superadmin and sign in' }).click();
    await page.getByRole('heading', { name: 'Cases', level: 1 }).waitFor();
    assert.equal((await apiCall(server, 'GET', '/api/setup')).needsSetup, false);

    // Sign out, and the sign-in screen in both themes.
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in to Casewire' }).waitFor();
    for (const scheme of ['light', 'dark']) {
      await page.emulateMedia({ colorScheme: scheme });
      await checkA11y(page, `signin-${scheme}`);
      await shoot(page, 'signin', scheme);
    }
    await page.getByLabel('Username').fill('root');
    await page.getByLabel('Password').fill('wrong password here');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('[data-error-code="bad_credentials"]').waitFor();
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Cases', level: 1 }).waitFor();

    // The session is revoked elsewhere while the person is on the queue screen.
    await page.goto(`${ui.url}/#/queue`);
    await page.getByRole('heading', { name: 'Event queue' }).waitFor();
    const token = await page.evaluate(() => JSON.parse(sessionStorage.getItem('casewire.session') ?? '{}').token);
    await apiCall(server, 'POST', '/api/auth/logout', { token });
    await page.getByText('Your session ended. Sign in again to continue where you were.').waitFor({ timeout: 20_000 });
    assert.match(page.url(), /#\/queue$/);
    await page.getByLabel('Username').fill('root');
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Event queue' }).waitFor();
    assert.deepEqual(browser.problems, []);
  } finally {
    await browser.close();
    await ui.close();
    await server.stop();
  }
});
