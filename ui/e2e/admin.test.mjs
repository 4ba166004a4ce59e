import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { shoot } from './shots.mjs';
import { PASSWORD, freePort, launch, setupSuperadmin, startServer, startTansu, uiOrigin, until } from './lib.mjs';

// librdkafka refuses messages over message.max.bytes at once, a permanent failure: that is how
// this test makes a dead letter (an oversized test event) against a real broker.
const TOML = '[librdkafka]\n"message.max.bytes" = 1000\n';

test('admin: live queue, retry now, test event, clear with typed count, dead-letter replay, users, a setting', { timeout: 200_000 }, async () => {
  const kafkaPort = await freePort();
  const server = await startServer({ name: 'admin', kafkaPort, toml: TOML });
  const ui = await uiOrigin(server);
  const browser = await launch();
  let tansu = null;
  try {
    await setupSuperadmin(server);
    const page = await browser.context.newPage();
    await page.goto(`${ui.url}/#/queue`);
    await page.getByLabel('Username').fill('root');
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Event queue' }).waitFor();

    // Live: the stats, the chart and its text equivalent.
    const queued = page.locator('[data-stat="queueSize"]');
    await queued.waitFor();
    await page.locator('.chart canvas').waitFor();
    await page.getByText(/^Now \d+ queued; /).waitFor();
    await page.getByRole('button', { name: 'Show as table' }).click();
    await page.getByRole('table', { name: /Queue depth and delivery rate/ }).waitFor();
    assert.match(await page.locator('[data-broker]').innerText(), /Not reachable/);

    // A test event shows up in the queue while the broker is down.
    await page.getByRole('button', { name: 'Send test event' }).click();
    const testDialog = page.getByRole('dialog', { name: 'Send a test event' });
    await testDialog.getByLabel('Message').fill('e2e ping');
    await testDialog.getByRole('button', { name: 'Queue test event' }).click();
    await page.getByText(/^Test event evt_\S+ queued\.$/).waitFor();
    const row = page.locator('[data-testid="queued-events"] tr[data-event-type="system.info"]');
    await row.first().waitFor();

    // Filter by priority and type; view its JSON.
    await page.getByRole('combobox', { name: 'Priority', exact: true }).selectOption('critical');
    await page.getByText('No queued event matches this filter.').waitFor();
    await page.getByRole('combobox', { name: 'Priority', exact: true }).selectOption('');
    await page.getByLabel('Event type').selectOption('system.info');
    await row.first().waitFor();
    await row.first().getByRole('button', { name: 'View JSON' }).click();
    const json = page.getByRole('dialog', { name: /^Event evt_/ });
    await json.getByText('"e2e ping"').waitFor();
    await page.keyboard.press('Escape');
    await json.waitFor({ state: 'hidden' });

    // Export what is on screen.
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export as JSON' }).click()]);
    const exported = JSON.parse(await readFile(await download.path(), 'utf8'));
    assert.equal(exported.filter.eventType, 'system.info');
    assert.ok(exported.queued.length >= 1 && exported.queued.every((e) => e.eventType === 'system.info'));
    await page.getByLabel('Event type').selectOption('');

    // Retry now.
    await page.getByRole('button', { name: 'Retry now' }).click();
    await page.getByText(/waiting events? (is|are) due now\.$/).waitFor();

    // Clear: the dialog states the count and wants it typed.
    await until('the stats to count the test event', async () => Number((await queued.innerText()).replace(/\D/g, '')) >= 3);
    await page.getByRole('button', { name: 'Clear queue…' }).click();
    const clear = page.getByRole('dialog', { name: 'Clear the queue?' });
    const body = await clear.innerText();
    const count = Number(/drops ([\d,]+) queued event/.exec(body)[1].replace(/,/g, ''));
    assert.ok(count >= 3);
    const submit = clear.getByRole('button', { name: 'Clear queue' });
    await clear.getByLabel(`Type ${count} to confirm`).fill(String(count + 1));
    assert.equal(await submit.isDisabled(), true);
    await clear.getByLabel(`Type ${count} to confirm`).fill(String(count));
    await submit.click();
    await page.getByText(new RegExp(`^${count} events? dropped\\.$`)).waitFor();

    // A broker comes up; an oversized event is dead-lettered; replay it.
    tansu = await startTansu(kafkaPort);
    await until('the broker to be connected', async () => /Connected/.test(await page.locator('[data-broker]').innerText()), 60_000, 250);
    await page.getByRole('button', { name: 'Send test event' }).click();
    await testDialog.getByLabel('Message').fill('oversized '.repeat(150));
    await testDialog.getByRole('button', { name: 'Queue test event' }).click();
    const deadRow = page.locator('[data-testid="dead-letters"] tbody tr');
    await deadRow.first().waitFor({ timeout: 60_000 });
    assert.match(await deadRow.first().innerText(), /size|large/i);
    await deadRow.first().getByRole('checkbox').check();
    await page.getByRole('button', { name: 'Replay 1 selected' }).click();
    const replay = page.getByRole('dialog', { name: 'Replay dead letters?' });
    await replay.getByText('1 dead letter goes back into the queue and will be sent again.').waitFor();
    await replay.getByRole('button', { name: 'Replay 1 selected' }).click();
    await page.getByText('1 dead letter replayed.').waitFor();
    await until('the chart to have several samples', async () => (await page.locator('#chart-table tbody tr').count()) >= 5, 30_000, 500);
    await shoot(page, 'queue-live', 'light');

    // Evidence delete: the record and hash stay.
    const { caseId, evidenceId, hash } = await page.evaluate(async () => {
      const token = JSON.parse(sessionStorage.getItem('casewire.session')).token;
      const h = { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' };
      const c = await (await fetch('/api/cases', { method: 'POST', headers: h, body: JSON.stringify({ title: 'Delete me' }) })).json();
      const form = new FormData();
      form.append('caseId', c.case.caseId);
      form.append('wallet', '0x' + '77'.repeat(20));
      form.append('reporter', 'root');
      form.append('evidenceFile', new File(['to be deleted'], 'doomed.txt', { type: 'text/plain' }));
      const e = await (await fetch('/api/evidence/upload', { method: 'POST', headers: { Authorization: `Bearer ${token}` }, body: form })).json();
      return { caseId: c.case.caseId, evidenceId: e.evidence.evidenceId, hash: e.evidence.storageHash };
    });
    await page.goto(`${ui.url}/#/evidence/${evidenceId}`);
    await page.getByRole('button', { name: 'Delete file' }).click();
    const del = page.getByRole('dialog', { name: 'Delete this evidence file?' });
    await del.getByText(/Its record and SHA-256 stay/).waitFor();
    await del.getByRole('button', { name: 'Delete file' }).click();
    await page.getByText('File deleted; its record and hash are kept.').waitFor();
    await page.getByText(/^Content deleted on /).waitFor();
    await page.locator(`[data-hash]:text-is("${hash}")`).waitFor();
    assert.equal(await page.getByRole('button', { name: 'Download' }).isDisabled(), true);
    assert.ok(caseId);

    // Users: add one, then disable them.
    await page.getByRole('link', { name: 'Users' }).click();
    await page.getByRole('heading', { name: 'Users', level: 1 }).waitFor();
    await page.getByRole('button', { name: 'Add user' }).click();
    const add = page.getByRole('dialog', { name: 'Add a user' });
    await add.getByLabel('Username').fill('dana');
    await add.getByLabel('Role').selectOption('analyst');
    await add.getByLabel('Initial password').fill(PASSWORD);
    await add.getByRole('button', { name: 'Add user' }).click();
    await page.getByText('dana added.').waitFor();
    const dana = page.locator('tr[data-username="dana"]');
    await dana.getByRole('button', { name: 'Disable' }).click();
    await page.getByRole('dialog', { name: 'Disable dana?' }).getByRole('button', { name: 'Disable' }).click();
    await dana.getByText('Disabled', { exact: true }).waitFor();

    // Settings: an invalid value shows the server's reason; a valid one is saved.
    await page.getByRole('link', { name: 'Settings' }).click();
    const retries = page.locator('tr[data-setting="MAX_RETRIES"]');
    await retries.waitFor();
    await retries.getByLabel('New value for MAX_RETRIES').fill('many');
    await retries.getByRole('button', { name: 'Save' }).click();
    await retries.locator('[data-error-code="invalid_request"], [data-error-code="invalid_setting"]').waitFor();
    await retries.getByLabel('New value for MAX_RETRIES').fill('12');
    await retries.getByRole('button', { name: 'Save' }).click();
    await page.getByText('MAX_RETRIES saved.').waitFor();
    await retries.getByText('Set in the app').waitFor();
    assert.equal(await retries.getByLabel('New value for MAX_RETRIES').inputValue(), '12');
    const brokers = page.locator('tr[data-setting="KAFKA_BROKERS"]');
    assert.equal(await brokers.locator('input').count(), 0, 'a value fixed by the environment is not editable');
    assert.deepEqual(browser.problems, []);
  } finally {
    await browser.close();
    await ui.close();
    await tansu?.stop();
    await server.stop();
  }
});
