import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, stat, writeFile, chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { PASSWORD, apiCall, launch, setupSuperadmin, startAnvil, startServer, uiOrigin, until, uploadEvidence } from './lib.mjs';
import { checkA11y, shoot } from './shots.mjs';

const WALLET = '0x' + '5f3c'.repeat(10);

/** Where the anchoring of `evidence` stands, through the API. */
async function anchorState(server, token, evidence) {
  const answer = await apiCall(server, 'GET', `/api/evidence/${evidence.evidenceId}/anchor`, { token });
  return answer.request?.state ?? null;
}

async function seed(server, anvil) {
  const token = await setupSuperadmin(server);
  await apiCall(server, 'POST', '/api/users', { token, body: { username: 'ivy', role: 'analyst', password: PASSWORD } });
  const { case: c } = await apiCall(server, 'POST', '/api/cases', { token, body: { title: 'Investment fraud, fake exchange', description: 'Three victims; deposits routed through one wallet.' } });
  await apiCall(server, 'POST', `/api/cases/${c.caseId}/assign`, { token, body: { assignee: 'ivy' } });
  await apiCall(server, 'POST', '/api/cases', { token, body: { title: 'Phishing kit, bank impersonation' } });
  const { case: closed } = await apiCall(server, 'POST', '/api/cases', { token, body: { title: 'Romance scam, funds recovered', description: 'One victim; the bank reversed both transfers.' } });
  await apiCall(server, 'POST', `/api/cases/${closed.caseId}/close`, { token, body: { resolution: 'Funds recovered by the bank; no further action.' } });
  const upload = (name, text) => uploadEvidence(server, token, { caseId: c.caseId, name, text, wallet: WALLET, riskLevel: 'high' });
  const good = await upload('bank-statement.txt', 'Statement, account 12-34-56, November 2026\n');
  const bad = await upload('wallet-screenshot.txt', 'Screenshot of the exchange dashboard (as text)\n');
  // Anchoring in each state: one anchored, one sent while the node mines nothing (pending),
  // one asked for once the node is gone (waiting).
  await apiCall(server, 'POST', `/api/evidence/${good.evidenceId}/anchor`, { token });
  await until('the statement to be anchored', async () => (await anchorState(server, token, good)) === 'anchored', 30_000);
  const pending = await upload('chat-export.txt', 'Chat with the fake exchange support, 3 pages\n');
  await anvil.rpc('evm_setAutomine', [false]);
  await apiCall(server, 'POST', `/api/evidence/${pending.evidenceId}/anchor`, { token });
  await until('the chat export to be sent', async () => (await anchorState(server, token, pending)) === 'pending', 30_000);
  await anvil.stop();
  const waiting = await upload('victim-letter.txt', 'Letter from the second victim\n');
  await apiCall(server, 'POST', `/api/evidence/${waiting.evidenceId}/anchor`, { token });
  await apiCall(server, 'POST', '/api/queue/test-event', { token, body: { eventType: 'system.info', data: { message: 'screens' } } });
  // Tamper with the second file on disk so its verification raises the alarm.
  await tamper(server.dataDir, bad.storageHash);
  return { caseId: c.caseId, closedId: closed.caseId, good, bad, pending, waiting };
}

async function tamper(dir, hash) {
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    const path = join(entry.parentPath ?? entry.path, entry.name);
    if (entry.isFile() && entry.name.includes(hash)) {
      await chmod(path, 0o644);
      await writeFile(path, 'changed after it was recorded\n');
      return;
    }
  }
  throw new Error(`no stored file for ${hash} under ${dir}`);
}

/** Signs in as root on `caseId`'s screen. */
async function signInOnCase(page, ui, caseId) {
  await page.goto(`${ui.url}/#/cases/${caseId}`);
  await page.getByLabel('Username').fill('root');
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

/** In `scheme`, opens the case, presses Check timeline and returns the tampered check's box. */
async function checkTampered(page, ui, caseId, scheme) {
  await page.emulateMedia({ colorScheme: scheme });
  await page.goto(`${ui.url}/#/cases/${caseId}`);
  await page.locator('table.timeline [data-delivery]').first().waitFor();
  await page.getByRole('button', { name: 'Check timeline' }).click();
  const check = page.locator('[data-testid="timeline-check"].tampered');
  await check.waitFor();
  return check;
}

test('every screen in both themes: no serious or critical axe violation, and a screenshot', { timeout: 200_000 }, async () => {
  const anvil = await startAnvil();
  const keys = await mkdtemp(join(tmpdir(), 'casewire-e2e-keys-'));
  const server = await startServer({ name: 'screens', env: await anvil.env(keys) });
  const ui = await uiOrigin(server);
  const browser = await launch();
  try {
    const { caseId, closedId, good, bad, pending, waiting } = await seed(server, anvil);
    const page = await browser.context.newPage();
    await page.goto(`${ui.url}/#/cases`);
    await page.getByLabel('Username').fill('root');
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Cases', level: 1 }).waitFor();

    const screens = [
      { name: 'cases', hash: '#/cases', ready: () => page.getByRole('link', { name: caseId }).waitFor() },
      { name: 'case-new-dialog', hash: '#/cases', ready: async () => { await page.getByRole('link', { name: caseId }).waitFor(); await page.keyboard.press('n'); await page.getByRole('dialog', { name: 'Open a new case' }).waitFor(); } },
      { name: 'case', hash: `#/cases/${caseId}`, ready: () => page.locator('table.timeline [data-delivery]').first().waitFor() },
      { name: 'case-timeline-checked', hash: `#/cases/${caseId}`, ready: async () => { await page.getByRole('button', { name: 'Check timeline' }).click(); await page.locator('[data-testid="timeline-check"]').getByText('The timeline is intact.').waitFor(); } },
      { name: 'cases-search', hash: '#/cases', ready: async () => { await page.getByRole('link', { name: caseId }).waitFor(); await page.getByLabel('Search cases').fill('phishing'); await page.getByRole('link', { name: caseId }).waitFor({ state: 'detached' }); await page.getByRole('cell', { name: 'Phishing kit, bank impersonation' }).waitFor(); } },
      { name: 'case-closed', hash: `#/cases/${closedId}`, ready: () => page.getByRole('button', { name: 'Reopen case' }).waitFor() },
      { name: 'case-escalate-dialog', hash: `#/cases/${caseId}`, ready: async () => { await page.getByRole('button', { name: 'Escalate' }).click(); await page.getByRole('dialog', { name: 'Escalate to an authority' }).waitFor(); } },
      { name: 'evidence-search', hash: `#/evidence?case=${caseId}`, ready: () => page.getByRole('link', { name: 'bank-statement.txt' }).waitFor() },
      { name: 'evidence-verified', hash: `#/evidence/${good.evidenceId}`, ready: async () => { await page.getByRole('button', { name: 'Verify hash' }).click(); await page.locator('[data-verified="true"]').waitFor(); } },
      { name: 'evidence-anchored', hash: `#/evidence/${good.evidenceId}`, ready: () => page.locator('[data-anchor-state="anchored"]').getByRole('button', { name: 'Download proof' }).waitFor() },
      { name: 'evidence-anchor-pending', hash: `#/evidence/${pending.evidenceId}`, ready: () => page.locator('[data-anchor-state="pending"]').getByText('Sent, waiting to be mined').waitFor() },
      { name: 'evidence-anchor-waiting', hash: `#/evidence/${waiting.evidenceId}`, ready: () => page.locator('[data-anchor-state="waiting"]').getByText('Waiting for the chain').waitFor() },
      { name: 'evidence-receipt-dialog', hash: `#/evidence/${waiting.evidenceId}`, ready: async () => { await page.getByRole('button', { name: 'Record a receipt' }).click(); await page.getByRole('dialog', { name: 'Record a receipt made elsewhere' }).waitFor(); } },
      { name: 'evidence-mismatch', hash: `#/evidence/${bad.evidenceId}`, ready: async () => { await page.getByRole('button', { name: 'Verify hash' }).click(); await page.locator('[data-verified="false"]').waitFor(); } },
      { name: 'evidence-add-dialog', hash: `#/cases/${caseId}`, ready: async () => { await page.getByRole('button', { name: 'Add evidence' }).click(); await page.getByRole('dialog', { name: 'Add evidence' }).waitFor(); } },
      { name: 'wallet', hash: `#/wallet/${WALLET}`, ready: async () => { await page.getByRole('button', { name: 'Check wallet' }).click(); await page.locator('[data-action]').waitFor(); } },
      { name: 'queue', hash: '#/queue', ready: async () => { await page.locator('.chart canvas').waitFor(); await page.locator('[data-testid="anchoring"] dl').waitFor(); } },
      { name: 'queue-clear-dialog', hash: '#/queue', ready: async () => { await page.locator('[data-testid="queued-events"]').waitFor(); await page.getByRole('button', { name: 'Clear queue…' }).click(); await page.getByRole('dialog', { name: 'Clear the queue?' }).waitFor(); } },
      { name: 'users', hash: '#/users', ready: () => page.locator('tr[data-username="ivy"]').waitFor() },
      { name: 'settings', hash: '#/settings', ready: () => page.locator('tr[data-setting="MAX_RETRIES"]').waitFor() },
      { name: 'account', hash: '#/account', ready: () => page.getByRole('heading', { name: 'Change password' }).waitFor() },
      { name: 'shortcuts', hash: '#/cases', ready: async () => { await page.getByRole('link', { name: caseId }).waitFor(); await page.keyboard.press('?'); await page.getByRole('dialog', { name: 'Keyboard shortcuts' }).waitFor(); } },
    ];
    for (const scheme of ['light', 'dark']) {
      await page.emulateMedia({ colorScheme: scheme });
      for (const screen of screens) {
        await page.goto(`${ui.url}/${screen.hash}`);
        await page.locator('main h1').first().waitFor();
        await screen.ready();
        await checkA11y(page, `${screen.name}-${scheme}`);
        await shoot(page, screen.name, scheme);
        await page.keyboard.press('Escape');
      }
    }
    // What an analyst (not an admin) sees behind the sync badge.
    const analyst = await browser.context.newPage();
    await analyst.goto(`${ui.url}/#/queue`);
    await analyst.getByLabel('Username').fill('ivy');
    await analyst.getByLabel('Password').fill(PASSWORD);
    await analyst.getByRole('button', { name: 'Sign in' }).click();
    await analyst.getByText('Only admins can manage the queue.', { exact: false }).waitFor();
    assert.equal(await analyst.getByRole('link', { name: 'Users' }).count(), 0);
    for (const scheme of ['light', 'dark']) {
      await analyst.emulateMedia({ colorScheme: scheme });
      await analyst.locator('dd').first().waitFor();
      await checkA11y(analyst, `queue-analyst-${scheme}`);
      await shoot(analyst, 'queue-analyst', scheme);
    }
    assert.deepEqual(browser.problems, []);
  } finally {
    await browser.close();
    await ui.close();
    await server.stop();
    await anvil.stop();
    await rm(keys, { recursive: true, force: true });
  }
});

test('a timeline edited in the database file: Check timeline names the edit and says what to do, in both themes', { timeout: 120_000 }, async () => {
  // Unencrypted, so that the file can be edited with sqlite3 as someone holding the disk
  // of a laptop without encryption could.
  const env = { CASEWIRE_ENCRYPTION: 'off' };
  const first = await startServer({ name: 'tampered', env });
  const token = await setupSuperadmin(first);
  const { case: c } = await apiCall(first, 'POST', '/api/cases', { token, body: { title: 'Mule accounts, three banks', description: 'Deposits split across accounts opened the same week.' } });
  await apiCall(first, 'POST', '/api/users', { token, body: { username: 'ivy', role: 'analyst', password: PASSWORD } });
  await apiCall(first, 'POST', `/api/cases/${c.caseId}/assign`, { token, body: { assignee: 'ivy' } });
  await apiCall(first, 'POST', `/api/cases/${c.caseId}/escalate`, { token, body: { authority: 'National Crime Agency', reason: 'Losses above the reporting threshold.' } });
  await first.stop({ keep: true });
  // Rewrite who the case was assigned to, in the recorded event itself.
  execFileSync('sqlite3', [join(first.dataDir, 'outbox.db'), `UPDATE case_events SET data = replace(data, '"ivy"', '"mallory"') WHERE case_id = '${c.caseId}' AND event_type = 'case.assigned'`]);
  const edited = execFileSync('sqlite3', [join(first.dataDir, 'outbox.db'), `SELECT count(*) FROM case_events WHERE data LIKE '%mallory%'`]).toString().trim();
  assert.equal(edited, '1', 'the row was edited');

  const server = await startServer({ name: 'tampered-again', env, dataDir: first.dataDir });
  const ui = await uiOrigin(server);
  const browser = await launch();
  try {
    const page = await browser.context.newPage();
    await signInOnCase(page, ui, c.caseId);
    for (const scheme of ['light', 'dark']) {
      const check = await checkTampered(page, ui, c.caseId, scheme);
      const said = await check.innerText();
      assert.match(said, /edited/i, said);
      await checkA11y(page, `case-timeline-tampered-${scheme}`);
      await shoot(page, 'case-timeline-tampered', scheme);
    }
    assert.deepEqual(browser.problems, []);
  } finally {
    await browser.close();
    await ui.close();
    await server.stop();
  }
});

test('a timeline cut short in the database file below its head anchored on chain: Check timeline names the deletion and the chain vouches for the anchor, in both themes', { timeout: 150_000 }, async () => {
  const anvil = await startAnvil();
  const keys = await mkdtemp(join(tmpdir(), 'casewire-e2e-keys-'));
  // Unencrypted, so that sqlite3 can rewrite the file as someone holding the disk could.
  const env = { CASEWIRE_ENCRYPTION: 'off', ...(await anvil.env(keys)) };
  const first = await startServer({ name: 'truncated', env });
  let server = first;
  const browser = await launch();
  let ui = null;
  try {
    const token = await setupSuperadmin(first);
    const { case: c } = await apiCall(first, 'POST', '/api/cases', { token, body: { title: 'Crypto ATM scam, two victims', description: 'Cash deposited at a kiosk after a fake police call.' } });
    const evidence = await uploadEvidence(first, token, { caseId: c.caseId, name: 'kiosk-receipt.txt', text: 'Kiosk receipt, 2,400 EUR\n', wallet: WALLET });
    await apiCall(first, 'POST', `/api/evidence/${evidence.evidenceId}/anchor`, { token });
    await until('the receipt to be anchored', async () => (await anchorState(first, token, evidence)) === 'anchored', 30_000);
    await first.stop({ keep: true });

    // Delete the case's events from the upload on and point its recorded head at the first:
    // the chain that is left is whole, and only the anchored head shows what is gone.
    const db = join(first.dataDir, 'outbox.db');
    const sql = (query) => execFileSync('sqlite3', [db, query]).toString().trim();
    const anchored = Number(sql(`SELECT MAX(sequence) FROM case_head_anchors WHERE case_id = '${c.caseId}'`));
    assert.ok(anchored >= 3, `the head was anchored at event ${anchored}`);
    sql(`DELETE FROM case_events WHERE case_id = '${c.caseId}' AND chain_sequence >= 2`);
    sql(`UPDATE cases SET chain_length = 1, chain_head = (SELECT chain_hash FROM case_events WHERE case_id = '${c.caseId}' AND chain_sequence = 1) WHERE case_id = '${c.caseId}'`);

    server = await startServer({ name: 'truncated-again', env, dataDir: first.dataDir });
    ui = await uiOrigin(server);
    const page = await browser.context.newPage();
    await signInOnCase(page, ui, c.caseId);
    for (const scheme of ['light', 'dark']) {
      const check = await checkTampered(page, ui, c.caseId, scheme);
      const said = await check.innerText();
      // The first check's alert is chained after the cut, so the second names one event fewer.
      assert.match(said, /Deleted:.*anchored on chain.*(events \d+ to \d+ were|event \d+ was) deleted and the head rewritten/s, said);
      assert.equal(await check.locator('[data-testid="anchored-head"]').getAttribute('data-state'), 'verified', said);
      assert.match(said, /The chain confirms that anchor\./, said);
      await checkA11y(page, `case-timeline-truncated-${scheme}`);
      await shoot(page, 'case-timeline-truncated', scheme);
      // What the admin sees of anchoring: the address that pays the gas, its balance, the
      // batch anchored last.
      await page.goto(`${ui.url}/#/queue`);
      const panel = page.locator('[data-testid="anchoring"]');
      await panel.getByText('of the chain’s coin').waitFor();
      const shown = await panel.innerText();
      assert.match(shown, /0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266/i, shown);
      assert.match(shown, /1 file and 1 case timeline in block/, shown);
      await checkA11y(page, `queue-anchoring-${scheme}`);
      await shoot(page, 'queue-anchoring', scheme);
    }
    assert.deepEqual(browser.problems, []);
  } finally {
    await browser.close();
    await ui?.close();
    await server.stop();
    await anvil.stop();
    await rm(keys, { recursive: true, force: true });
  }
});
