import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PASSWORD, apiCall, launch, setupSuperadmin, startServer, uiOrigin } from './lib.mjs';
import { checkA11y, shoot } from './shots.mjs';

async function signIn(page, username = 'root') {
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

test('idle lock: after CASEWIRE_IDLE_LOCK_MINUTES without input, sign-in with the name, the server session ended, back to the page', { timeout: 120_000 }, async () => {
  const server = await startServer({ name: 'idle-lock', env: { CASEWIRE_IDLE_LOCK_MINUTES: '2' } });
  const ui = await uiOrigin(server);
  const browser = await launch();
  try {
    await setupSuperadmin(server);
    const page = await browser.context.newPage();
    await page.clock.install();
    await page.goto(`${ui.url}/#/queue`);
    await signIn(page);
    await page.getByRole('heading', { name: 'Event queue' }).waitFor();
    // No broker is configured here: the badge says so, and that the events are safe.
    const badge = page.locator('[data-sync-state]');
    await page.locator('[data-sync-state="not_configured"]').waitFor();
    assert.match(await badge.innerText(), /Kafka not configured/);
    assert.match(await badge.innerText(), /Safe on this laptop/);
    assert.match((await badge.getAttribute('title')) ?? '', /An admin sets KAFKA_BROKERS in Settings/);
    await page.getByTestId('sync-explained').getByRole('link', { name: 'Open the Kafka settings' }).waitFor();
    const token = await page.evaluate(() => JSON.parse(sessionStorage.getItem('casewire.session') ?? '{}').token);
    assert.equal((await apiCall(server, 'GET', '/api/auth/me', { token })).preferences.idleLockMinutes, 2);

    // Input keeps the session: 1.5 minutes, a mouse move, 1.5 more.
    await page.clock.fastForward('01:30');
    await page.mouse.move(200, 300);
    await page.mouse.move(220, 310);
    await page.clock.fastForward('01:30');
    await page.getByRole('heading', { name: 'Event queue' }).waitFor();
    await page.keyboard.press('Shift');
    await page.clock.fastForward('01:59');
    assert.equal(await page.getByRole('heading', { name: 'Event queue' }).count(), 1);

    // Two minutes without input: locked.
    await page.clock.fastForward('00:02');
    await page.getByTestId('locked').waitFor();
    assert.match(await page.getByTestId('locked').innerText(), /locked after 2 minutes without input/);
    assert.equal(await page.getByLabel('Username').inputValue(), 'root');
    assert.match(page.url(), /#\/queue$/);
    assert.equal(await page.evaluate(() => sessionStorage.getItem('casewire.session')), null);
    // The server session was logged out, not just forgotten here.
    await assert.rejects(apiCall(server, 'GET', '/api/auth/me', { token }), /401/);

    for (const scheme of ['light', 'dark']) {
      await page.emulateMedia({ colorScheme: scheme });
      await checkA11y(page, `locked-${scheme}`);
      await shoot(page, 'locked', scheme);
    }
    assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('name')), 'password');
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

test('theme: the CASEWIRE_THEME setting forces light or dark over the system, both pass axe, and a save applies it at once', { timeout: 150_000 }, async () => {
  const server = await startServer({ name: 'theme' });
  const ui = await uiOrigin(server);
  const browser = await launch();
  try {
    await setupSuperadmin(server);
    const page = await browser.context.newPage();
    await page.emulateMedia({ colorScheme: 'light' });
    await page.goto(`${ui.url}/#/settings`);
    await signIn(page);
    const theme = page.locator('tr[data-setting="CASEWIRE_THEME"]');
    await theme.waitFor();
    const html = page.locator('html');
    assert.equal(await html.getAttribute('data-theme'), null);

    const setTheme = async (value) => {
      await theme.getByRole('textbox').fill(value);
      await theme.getByRole('button', { name: 'Save' }).click();
      await page.waitForFunction((v) => document.documentElement.dataset.theme === v, value);
    };
    const background = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);

    // Dark although the system prefers light.
    await setTheme('dark');
    assert.equal(await background(), 'rgb(20, 23, 27)');
    for (const hash of ['#/settings', '#/queue', '#/cases']) {
      await page.goto(`${ui.url}/${hash}`);
      await page.locator('main h1').first().waitFor();
      await page.waitForFunction(() => document.documentElement.dataset.theme === 'dark');
      await checkA11y(page, `forced-dark ${hash}`);
    }
    await shoot(page, 'cases-forced', 'dark');
    // Remembered on this machine: the sign-in screen is dark too.
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in to Casewire' }).waitFor();
    assert.equal(await html.getAttribute('data-theme'), 'dark');
    await checkA11y(page, 'forced-dark sign-in');
    await page.goto(`${ui.url}/#/settings`);
    await signIn(page);
    await theme.waitFor();

    // Light although the system prefers dark.
    await page.emulateMedia({ colorScheme: 'dark' });
    await setTheme('light');
    assert.equal(await background(), 'rgb(245, 246, 248)');
    for (const hash of ['#/settings', '#/queue', '#/cases']) {
      await page.goto(`${ui.url}/${hash}`);
      await page.locator('main h1').first().waitFor();
      await page.waitForFunction(() => document.documentElement.dataset.theme === 'light');
      await checkA11y(page, `forced-light ${hash}`);
    }
    await shoot(page, 'cases-forced', 'light');

    // Back to the default: the system decides again.
    await page.goto(`${ui.url}/#/settings`);
    await theme.getByRole('button', { name: 'Back to default' }).click();
    await page.waitForFunction(() => !document.documentElement.hasAttribute('data-theme'));
    assert.equal(await background(), 'rgb(20, 23, 27)');
    assert.deepEqual(browser.problems, []);
  } finally {
    await browser.close();
    await ui.close();
    await server.stop();
  }
});
