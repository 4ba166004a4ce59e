// The desktop shell's side of the page, simulated: `window.__TAURI_INTERNALS__` is what
// @tauri-apps/api calls, so an init script standing in for it runs the page in its desktop mode
// (no blob downloads, no async clipboard) against a real `casewire serve`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PASSWORD, apiCall, launch, setupSuperadmin, startAnvil, startServer, uiOrigin, until, uploadEvidence } from './lib.mjs';

function fakeShell({ cancelSave = false } = {}) {
  let callbacks = 0;
  window.__shell = { calls: [], saved: [] };
  window.__TAURI_EVENT_PLUGIN_INTERNALS__ = { unregisterListener: () => {} };
  window.__TAURI_INTERNALS__ = {
    convertFileSrc: () => `${location.origin}/`,
    transformCallback: () => (callbacks += 1),
    unregisterCallback: () => {},
    invoke: async (cmd, args) => {
      window.__shell.calls.push(cmd);
      switch (cmd) {
        case 'plugin:event|listen':
          return callbacks;
        case 'plugin:event|unlisten':
          return null;
        case 'pick_save_path':
          return cancelSave ? null : { handle: 'save-1', name: `chosen-${args.suggestedName}` };
        case 'save_text':
          if (args.handle !== 'save-1') throw 'unknown save handle';
          window.__shell.saved.push(args.text);
          return null;
        default:
          throw `no such command: ${cmd}`;
      }
    },
  };
  // WebKitGTK may have no async clipboard.
  Object.defineProperty(navigator, 'clipboard', { value: undefined, configurable: true });
  window.__copied = [];
  document.addEventListener('copy', (e) => window.__copied.push(e.target?.value ?? document.getSelection()?.toString() ?? ''));
}

test('desktop mode: export through the shell\'s save dialog, copy without the async clipboard, the save route\'s error explained', { timeout: 120_000 }, async () => {
  const server = await startServer({ name: 'desktop' });
  const ui = await uiOrigin(server);
  const browser = await launch();
  try {
    const token = await setupSuperadmin(server);
    const { case: c } = await apiCall(server, 'POST', '/api/cases', { token, body: { title: 'Desktop export', description: '' } });
    const evidence = await uploadEvidence(server, token, { caseId: c.caseId, name: 'note.txt', text: 'a note\n' });
    await apiCall(server, 'POST', '/api/queue/test-event', { token, body: { eventType: 'system.info', data: { message: 'desktop export' } } });

    const page = await browser.context.newPage();
    await page.addInitScript(fakeShell);
    let blobDownloads = 0;
    page.on('download', () => (blobDownloads += 1));
    await page.goto(`${ui.url}/#/queue`);
    await page.getByLabel('Username').fill('root');
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('[data-testid="queued-events"] tr[data-event-type="system.info"]').first().waitFor();

    // Export: the shell asks where, then writes; the toast names the chosen file.
    await page.getByRole('button', { name: 'Export as JSON' }).click();
    await page.getByText(/exported to chosen-casewire-queue-.*\.json\./).waitFor();
    const saved = await page.evaluate(() => window.__shell.saved);
    assert.equal(saved.length, 1);
    const exported = JSON.parse(saved[0]);
    assert.ok(exported.queued.some((e) => e.eventType === 'system.info'));
    const calls = await page.evaluate(() => window.__shell.calls.filter((c) => !c.startsWith('plugin:')));
    assert.deepEqual(calls, ['pick_save_path', 'save_text']);

    // Copy a hash with no async clipboard: the textarea fallback, and the toast.
    await page.goto(`${ui.url}/#/evidence/${evidence.evidenceId}`);
    await page.getByRole('button', { name: 'Copy hash' }).first().click();
    await page.getByText('Copied to the clipboard.').waitFor();
    assert.deepEqual(await page.evaluate(() => window.__copied), [evidence.storageHash]);
    assert.equal(await page.locator('textarea.clipboard-helper').count(), 0);

    // Download by the save route: `casewire serve` holds no file handles, and says so.
    await page.getByRole('button', { name: 'Download' }).click();
    const note = page.locator('[data-error-code]').first();
    await note.waitFor();
    assert.match((await note.getAttribute('data-error-code')) ?? '', /^(unknown_file_handle|local_files_unavailable)$/);
    assert.equal(blobDownloads, 0, 'no blob link in the desktop');
    assert.deepEqual(browser.problems, []);
  } finally {
    await browser.close();
    await ui.close();
    await server.stop();
  }
});

test('desktop mode: an anchor proof is saved through the shell\'s save dialog', { timeout: 120_000 }, async () => {
  const anvil = await startAnvil();
  const keys = await mkdtemp(join(tmpdir(), 'casewire-e2e-keys-'));
  const server = await startServer({ name: 'desktop-proof', env: await anvil.env(keys) });
  const ui = await uiOrigin(server);
  const browser = await launch();
  try {
    const token = await setupSuperadmin(server);
    const evidence = await uploadEvidence(server, token, { caseId: 'CASE-2026-001', name: 'ledger.txt', text: 'a ledger\n' });
    await apiCall(server, 'POST', `/api/evidence/${evidence.evidenceId}/anchor`, { token });
    await until('the ledger to be anchored', async () => (await apiCall(server, 'GET', `/api/evidence/${evidence.evidenceId}/anchor`, { token })).request?.state === 'anchored', 30_000);

    const page = await browser.context.newPage();
    await page.addInitScript(fakeShell);
    await page.goto(`${ui.url}/#/evidence/${evidence.evidenceId}`);
    await page.getByLabel('Username').fill('root');
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('button', { name: 'Save proof…' }).click();
    await page.getByText(`Proof saved as chosen-anchor-proof-${evidence.evidenceId}.json.`).waitFor();
    const saved = await page.evaluate(() => window.__shell.saved);
    assert.equal(saved.length, 1);
    const proof = JSON.parse(saved[0]);
    assert.equal(proof.format, 'casewire-anchor-proof/1');
    assert.equal(proof.evidenceId, evidence.evidenceId);
    assert.equal(proof.fileHash, `0x${evidence.storageHash}`);
    assert.deepEqual(browser.problems, []);
  } finally {
    await browser.close();
    await ui.close();
    await server.stop();
    await anvil.stop();
    await rm(keys, { recursive: true, force: true });
  }
});
