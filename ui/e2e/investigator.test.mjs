import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { shoot } from './shots.mjs';
import { PASSWORD, apiCall, freePort, launch, setupSuperadmin, startServer, startTansu, uiOrigin, until } from './lib.mjs';

const WALLET = '0x' + 'ab12'.repeat(10);
const CONTENT = Buffer.from('Exported chat, 2026-11-30\nsuspect: send the USDT to the usual address\n');
const SHA = createHash('sha256').update(CONTENT).digest('hex');

test('investigator: case, evidence with verify and download, events wait while the broker is down and are delivered once it starts', { timeout: 180_000 }, async () => {
  const kafkaPort = await freePort();
  const server = await startServer({ name: 'investigator', kafkaPort });
  const ui = await uiOrigin(server);
  const browser = await launch();
  let tansu = null;
  try {
    const root = await setupSuperadmin(server);
    await apiCall(server, 'POST', '/api/users', { token: root, body: { username: 'ivy', role: 'analyst', password: PASSWORD } });
    await apiCall(server, 'POST', '/api/users', { token: root, body: { username: 'sam', role: 'user', password: PASSWORD } });

    const page = await browser.context.newPage();
    await page.goto(`${ui.url}/`);
    await page.getByLabel('Username').fill('ivy');
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Cases', level: 1 }).waitFor();

    // The badge says the work is waiting on this laptop.
    const badge = page.locator('[data-sync-state]');
    // A broker that is merely down is `offline` (an admin need not act), never `error`.
    const seen = new Set();
    await until('the badge to say offline', async () => {
      const state = (await badge.getAttribute('data-sync-state')) ?? '';
      seen.add(state);
      return state === 'offline';
    });
    assert.ok(!seen.has('error'), `states seen: ${[...seen]}`);
    assert.match(await badge.innerText(), /Offline · \d+ waiting/);
    assert.match(await badge.innerText(), /Kept on this laptop until a broker answers/);
    assert.match((await badge.getAttribute('title')) ?? '', /No Kafka broker can be reached\. .* kept safe on this laptop/);

    // A new case, from the keyboard shortcut.
    await page.keyboard.press('n');
    await page.getByRole('dialog', { name: 'Open a new case' }).waitFor();
    await page.getByLabel('Title').fill('Romance scam, USDT transfers');
    await page.getByLabel('Description').fill('Victim reports four transfers to a wallet named in chat.');
    await page.getByRole('button', { name: 'Open case' }).click();
    await page.getByRole('heading', { name: 'Romance scam, USDT transfers', level: 1 }).waitFor();
    const caseId = decodeURIComponent(/#\/cases\/(.+)$/.exec(page.url())[1]);
    assert.match(caseId, /^CASE-\d{4}-\d{3,}$/);

    const opened = page.locator('tr[data-event-type="case.created"] [data-delivery]');
    await opened.waitFor();
    assert.notEqual(await opened.getAttribute('data-delivery'), 'delivered');
    assert.match(await opened.innerText(), /Waiting on this laptop/);

    // Edit.
    await page.getByRole('button', { name: 'Edit', exact: true }).click();
    await page.getByLabel('Title').fill('Romance scam, USDT transfers (4)');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByRole('heading', { name: 'Romance scam, USDT transfers (4)', level: 1 }).waitFor();

    // Evidence by the picker, with progress.
    await page.getByRole('button', { name: 'Add evidence' }).click();
    const dialog = page.getByRole('dialog', { name: 'Add evidence' });
    const [chooser] = await Promise.all([page.waitForEvent('filechooser'), dialog.getByRole('button', { name: 'Choose files…' }).click()]);
    await chooser.setFiles({ name: 'chat-export.txt', mimeType: 'text/plain', buffer: CONTENT });
    await dialog.getByText('1 file chosen').waitFor();
    await dialog.getByLabel('Wallet address').fill(WALLET);
    await dialog.getByLabel('Risk level').selectOption('high');
    await dialog.getByRole('button', { name: 'Add to case' }).click();
    await page.getByText('chat-export.txt added; its hash is recorded.').waitFor();
    await page.locator(`[data-hash]:text-is("${SHA}")`).first().waitFor();

    // A second file dropped on the drop zone (the browser path: a DOM drop with a File).
    await page.getByRole('button', { name: 'Add evidence' }).click();
    await page.evaluate(() => {
      const zone = document.querySelector('.drop');
      const data = new DataTransfer();
      data.items.add(new File(['transfer receipt 4 of 4\n'], 'receipt-4.txt', { type: 'text/plain' }));
      zone.dispatchEvent(new DragEvent('drop', { dataTransfer: data, bubbles: true, cancelable: true }));
    });
    await dialog.getByText('receipt-4.txt').waitFor();
    await dialog.getByLabel('Wallet address').fill(WALLET);
    await dialog.getByRole('button', { name: 'Add to case' }).click();
    await page.getByText('receipt-4.txt added; its hash is recorded.').waitFor();
    await page.getByRole('link', { name: 'receipt-4.txt' }).waitFor();

    // Assign to someone from the list; escalate with confirmation.
    await page.getByRole('button', { name: 'Assign' }).click();
    await page.getByLabel('Investigator').selectOption('sam');
    await page.getByRole('dialog', { name: 'Assign case' }).getByRole('button', { name: 'Assign' }).click();
    await page.getByText('Case assigned to sam.').waitFor();
    await page.getByRole('button', { name: 'Escalate' }).click();
    const esc = page.getByRole('dialog', { name: 'Escalate to an authority' });
    await esc.getByLabel('Authority').fill('National Cyber Crime Unit');
    await esc.getByLabel('Reason').fill('Funds moved across borders; victim abroad.');
    await esc.getByRole('button', { name: 'Escalate case' }).click();
    await page.getByText('Case escalated.').waitFor();

    // The evidence: full hash, verify side by side, download.
    await page.getByRole('link', { name: 'chat-export.txt' }).click();
    await page.getByRole('heading', { name: 'chat-export.txt', level: 1 }).waitFor();
    await page.getByRole('button', { name: 'Verify hash' }).click();
    await page.getByText('The file is intact: its hash matches the one recorded.').waitFor();
    const verified = page.locator('[data-verified="true"] [data-hash]');
    assert.deepEqual(await verified.allInnerTexts(), [SHA, SHA]);
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download' }).click()]);
    assert.equal(download.suggestedFilename(), 'chat-export.txt');
    const saved = await readFile(await download.path());
    assert.equal(createHash('sha256').update(saved).digest('hex'), SHA);

    // A receipt made elsewhere cannot be recorded unchecked: with no chain set up, the dialog
    // says so and what to do, and nothing is recorded.
    await page.getByRole('button', { name: 'Record a receipt' }).click();
    const anchor = page.getByRole('dialog', { name: 'Record a receipt made elsewhere' });
    await anchor.getByLabel('Transaction hash').fill('0x' + '1f'.repeat(32));
    await anchor.getByLabel('Block number').fill('19876543');
    await anchor.getByLabel('Contract address').fill('0x' + 'c0de'.repeat(10));
    await anchor.getByRole('button', { name: 'Record anchor' }).click();
    await anchor.getByText('No chain is set up to check this receipt against.').waitFor();
    await anchor.getByText('Nothing was recorded.', { exact: false }).waitFor();
    await anchor.getByRole('button', { name: 'Cancel' }).click();
    // Anchoring by Casewire itself: asked for, it waits on this laptop for the chain.
    await page.getByRole('button', { name: 'Anchor on chain' }).click();
    await page.locator('[data-anchor-state="waiting"]').getByText('Waiting for the chain').waitFor();
    await page.getByText('No chain is set up on this Casewire yet', { exact: false }).waitFor();

    // Wallet check from the evidence's wallet, and feedback on it.
    await page.goto(`${ui.url}/#/wallet/${WALLET}`);
    await page.getByRole('button', { name: 'Check wallet' }).click();
    const result = page.locator('[data-action]');
    await result.waitFor();
    assert.match(await result.innerText(), /Known fraudster/, 'the wallet is in an escalated case');
    await page.getByLabel('What should be done').selectOption('freeze');
    await page.getByRole('button', { name: 'Send feedback' }).click();
    await page.getByText(/^Feedback recorded: /).first().waitFor();

    // Back on the case: everything is still waiting; the broker starts; all are delivered.
    await page.goto(`${ui.url}/#/cases/${encodeURIComponent(caseId)}`);
    const states = page.locator('table.timeline [data-delivery]');
    await page.locator('tr[data-event-type="evidence.downloaded"]').waitFor();
    const before = await states.evaluateAll((els) => els.map((e) => e.getAttribute('data-delivery')));
    assert.ok(before.length >= 6, `timeline has the actions: ${before}`);
    assert.ok(before.every((s) => s === 'waiting' || s === 'sending'), `nothing delivered while the broker is down: ${before}`);

    await shoot(page, 'case-broker-down', 'light');
    tansu = await startTansu(kafkaPort);
    await until('every timeline event to be delivered', async () => {
      const now = await states.evaluateAll((els) => els.map((e) => e.getAttribute('data-delivery')));
      return now.length >= before.length && now.every((s) => s === 'delivered');
    }, 90_000, 500);
    assert.match(await page.locator('tr[data-event-type="case.created"] [data-delivery]').innerText(), /Delivered/);
    await shoot(page, 'case-delivered', 'light');
    await until('the badge to say synced', async () => (await badge.getAttribute('data-sync-state')) === 'synced', 30_000);
    assert.deepEqual(browser.problems, []);
  } finally {
    await browser.close();
    await ui.close();
    await tansu?.stop();
    await server.stop();
  }
});
