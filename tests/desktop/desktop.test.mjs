// The real desktop window, driven through tauri-driver and WebKitWebDriver under Xvfb (run by
// scripts/desktop-e2e inside dbus-run-session and xvfb-run, with gnome-keyring and the dunst
// notification daemon on that session bus). In order, one app data folder throughout:
//  - launched alone, the app holds no TCP socket;
//  - first run, a case, evidence from a file picked in the real GTK open dialog (typed into it
//    with xdotool), the timeline and badge saying "waiting", still no TCP socket of its own;
//  - a SIGKILL and a relaunch that shows everything acknowledged before the kill;
//  - the evidence saved to a path chosen in the real save dialog, byte for byte;
//  - a file dragged from another application's window and dropped on the case, added;
//  - Kafka brokers set on the settings screen: the relay starts in the running app, the waiting
//    events are delivered, the badge and the tray say so, and a notification tells it once;
//  - the SASL password typed on the settings screen lands in the OS keyring, not in the file;
//  - a broker demanding SASL/SCRAM over TLS, set up on the settings screen with the CA as a file
//    path and a wrong password: the badge says Kafka refused the sign-in, the events wait; the
//    password corrected on the screen, they are delivered;
//  - closing the window keeps the app in the tray (told once), a second launch brings the
//    window back and exits, and the tray's Quit ends the app;
//  - an event deleted from the encrypted database with the keyring's key (as someone holding
//    the laptop's account could): the window's Check timeline names it;
//  - with an anvil chain set up, the anchoring key made in the keyring and its address shown
//    with no coin; funded, the evidence is anchored and the check has the chain confirm the head;
//  - with the session bus gone, the app starts and works all the same.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, mkdirSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { startAnvil } from '../anvil.mjs';
import {
  APP,
  Driver,
  PATIENCE,
  appEnv,
  appProcesses,
  busNameOwned,
  button,
  chooseInDialog,
  closeWindow,
  dropFileOn,
  firstRun,
  freePort,
  killApps,
  notificationsShown,
  ownSockets,
  screenshot,
  signIn,
  startSecureKafka,
  startTansu,
  tcpSocketsOf,
  text,
  trayClick,
  trayMenu,
  until,
  visibleWindows,
} from './harness.mjs';

const PASSWORD = 'correct horse battery staple';
const data = mkdtempSync(join(tmpdir(), 'casewire-desktop-'));
// A folder whose name shares no prefix with its neighbours, so the dialogs' inline completion
// of a typed path can only complete it to itself.
const evidenceDir = join(tmpdir(), `q${randomBytes(6).toString('hex')}`);
mkdirSync(evidenceDir);
const evidencePath = join(evidenceDir, 'wallet-ledger.csv');
const evidence = 'date,wallet,amount\n2026-11-30,0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed,4.2\n';
writeFileSync(evidencePath, evidence);
const sha256 = createHash('sha256').update(evidence).digest('hex');
const env = appEnv(data);

let driver;
let dunst;
let tansu;
let secure;
let browser;
let caseId;

before(async () => {
  // The notification daemon the app's notifications go to, on this test's session bus.
  dunst = spawn('dunst', [], { env, stdio: 'ignore' });
  await until('dunst serves notifications', () => busNameOwned('org.freedesktop.Notifications'));
});

after(async () => {
  await browser?.deleteSession().catch(() => {});
  driver?.stop();
  killApps();
  dunst?.kill('SIGKILL');
  tansu?.stop();
  secure?.stop();
});

/** Scrolls `selector` into the window and resolves once it is in view. */
async function inView(window, selector) {
  await until(`${selector} is in view`, () =>
    window.execute((sel) => {
      const el = document.querySelector(sel);
      el?.scrollIntoView({ block: 'start', behavior: 'instant' });
      const box = el?.getBoundingClientRect();
      // At the top, or wholly in view when the page ends before it can reach the top.
      return Boolean(box) && box.top >= 0 && (box.top < window.innerHeight / 2 || box.bottom <= window.innerHeight);
    }, selector),
  );
  // The scroll is painted by the next frames: the screenshot is of the screen, not the page.
  await window.executeAsync((done) => requestAnimationFrame(() => requestAnimationFrame(() => done())));
}

async function main() {
  return (await browser.$('main')).getText();
}

test('launched by itself, the app starts its backend and opens no TCP socket at all', async () => {
  const app = spawn(APP, [], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  app.stderr.on('data', (chunk) => (log += chunk));
  try {
    // The backend is up once the outbox has loaded its queue (its own log line).
    await until('the backend loaded its queue', () => /Loaded \d+ queued events from disk/.test(log));
    await until('the window is made', async () => appProcesses().family.length > 1);
    assert.deepEqual(tcpSocketsOf(appProcesses().family), [], 'the desktop opens no TCP socket');
  } finally {
    app.kill('SIGKILL');
    await until('the app is gone', async () => appProcesses().roots.length === 0);
  }
});

test('an investigator sets up the app, opens a case, adds evidence from a file and sees it waiting', async () => {
  driver = await Driver.start(env, data);
  browser = await driver.launch();
  try {
    await investigate();
  } finally {
    // The app is gone (killed below, or the test failed): end its session for the next launch.
    await browser.deleteSession().catch(() => {});
    browser = null;
  }
});

async function investigate() {
  const heading = await text(browser, 'h1');
  assert.match(heading, /Set up Casewire/);
  screenshot('first-run');

  // The window's backend answers through its scheme; the app's only TCP socket is the
  // automation port WebDriver itself asked WebKit for.
  assert.equal(appProcesses().roots.length, 1, 'one app process');
  assert.deepEqual(ownSockets(), [], 'the desktop opens no TCP socket of its own');

  await firstRun(browser, 'chief', PASSWORD);
  await (await button(browser, 'New case')).click();
  await (await browser.$('input[name=title]')).setValue('Exchange drained overnight');
  await (await button(browser, 'Open case')).click();
  caseId = await until('the case opens', async () => /CASE-\d{4}-\d{3}/.exec(await main())?.[0]);

  await (await button(browser, 'Add evidence')).click();
  await (await button(browser, 'Choose files…')).click();
  await chooseInDialog('Add evidence', evidencePath);
  await until('the picked file is listed', async () => /wallet-ledger\.csv/.test(await (await browser.$('dialog[open]')).getText()));
  await (await browser.$('dialog[open] input[name=wallet]')).setValue('0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed');
  await (await browser.$('dialog[open] input[name=reporter]')).setValue('desk officer');
  await (await button(browser, 'Add to case')).click();
  await until('the evidence shows with its full SHA-256', async () => (await main()).includes(sha256));

  // The timeline, the badge and the tray say the events wait on this laptop (no Kafka yet).
  assert.match(await (await browser.$('body')).getText(), /Waiting on this laptop/);
  const badge = await until('the badge counts the waiting events', async () => {
    const t = await (await browser.$('header')).getText();
    return /waiting/i.test(t) && t;
  });
  assert.match(badge, /\d+ waiting/i);
  // The tray looks at the queue every 2 s and the badge polls on its own: they agree once both
  // have looked since the last event was queued.
  let shown;
  await until('the tray menu counts them as the badge does', async () => {
    const waiting = Number(/(\d+) waiting/i.exec(await (await browser.$('header')).getText())?.[1]);
    shown = trayMenu()?.items.map((i) => i.label);
    return trayMenu()?.items.some((i) => i.label === `${waiting} events waiting (no Kafka configured)` && !i.enabled);
  }).catch((e) => {
    throw new Error(`${e.message}; the tray said ${JSON.stringify(shown)}`);
  });
  screenshot('case-with-evidence');
  assert.deepEqual(ownSockets(), [], 'still no TCP socket of its own after the work');

  // A SIGKILL of the app: everything committed before it must be there after a relaunch.
  for (const pid of appProcesses().roots) process.kill(Number(pid), 'SIGKILL');
  await until('the app is gone', async () => appProcesses().roots.length === 0);
}

test('after a SIGKILL the relaunched app signs in and shows everything acknowledged before it', async () => {
  assert.ok(caseId, 'the first scenario opened a case');
  browser = await driver.launch();
  await signIn(browser, 'chief', PASSWORD);
  await until('the case is listed', async () => (await main()).includes(caseId));
  await browser.execute((id) => (location.hash = `#/cases/${id}`), caseId);
  await until('the evidence survived with its hash', async () => (await main()).includes(sha256));
  const timeline = await main();
  assert.match(timeline, /Evidence added/);
  assert.match(timeline, /Case opened/);
  screenshot('after-relaunch');
});

test('evidence is saved to the path chosen in the save dialog, byte for byte', async () => {
  await (await browser.$('=wallet-ledger.csv')).click();
  await (await button(browser, 'Download')).click();
  const target = join(evidenceDir, 'copy-for-the-prosecutor.csv');
  await chooseInDialog('Save evidence', target);
  await until('the file is written', () => existsSync(target) && readFileSync(target, 'utf8') === evidence);
  await until('the page says where it went', async () => (await (await browser.$('body')).getText()).includes('copy-for-the-prosecutor.csv'));
});

test('a file dragged from another application and dropped on the window is added to the case', async () => {
  const dropped = join(evidenceDir, 'exchange-statement.txt');
  const content = `statement of ${randomBytes(8).toString('hex')}\n`;
  writeFileSync(dropped, content);
  await browser.execute((id) => (location.hash = `#/cases/${id}`), caseId);
  await until('the case shows', async () => (await main()).includes(sha256));
  await dropFileOn(visibleWindows()[0], dropped);
  await until('the add dialog lists the dropped file', async () => /exchange-statement\.txt/.test(await (await browser.$('dialog[open]')).getText()));
  await (await browser.$('dialog[open] input[name=wallet]')).setValue('0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed');
  await (await browser.$('dialog[open] input[name=reporter]')).setValue('desk officer');
  await (await button(browser, 'Add to case')).click();
  const hash = createHash('sha256').update(content).digest('hex');
  await until('the dropped file shows with its full SHA-256', async () => (await main()).includes(hash));
  screenshot('dropped');
});

test('brokers set on the settings screen start the relay in the running app and the waiting events are delivered', async () => {
  tansu = await startTansu(data);
  await browser.execute(() => (location.hash = '#/settings'));
  const row = await browser.$('tr[data-setting=KAFKA_BROKERS]');
  await row.waitForDisplayed({ timeout: 30_000 });
  await (await row.$('input')).setValue(tansu.brokers);
  await (await row.$('button[type=submit]')).click();
  await until('the screen says it is saved', async () => (await (await browser.$('body')).getText()).includes('KAFKA_BROKERS saved.'));
  assert.equal(await (await row.$('input')).getValue(), tansu.brokers);

  await until('the badge says everything is synced', async () => /Synced/.test(await (await browser.$('header')).getText()), 60_000);
  await browser.execute((id) => (location.hash = `#/cases/${id}`), caseId);
  await until('the timeline says each event was delivered', async () => {
    const t = await main();
    return /Delivered/.test(t) && !/Waiting on this laptop/.test(t);
  });
  await until('the tray says so', () => trayMenu()?.items.some((i) => i.label === 'All events delivered'));
  // The relaunch found a backlog and no broker; its delivery is told once.
  const told = await until('a notification tells the backlog was delivered', () =>
    notificationsShown().find((n) => n.summary === 'Back online'),
  );
  assert.match(told.body, /^\d+ events? delivered to headquarters$/);
  screenshot('delivered');
});

test('the SASL password typed on the settings screen is kept in the OS keyring and never in the settings file', async () => {
  const secret = `pw-${randomBytes(8).toString('hex')}`;
  await browser.execute(() => (location.hash = '#/settings'));
  const row = await browser.$('tr[data-setting=KAFKA_SASL_PASSWORD]');
  await row.waitForDisplayed({ timeout: 30_000 });
  await (await row.$('input')).setValue(secret);
  await (await row.$('button[type=submit]')).click();
  // Saved once the field is emptied again: the screen never shows a secret back.
  await until('the screen says a password is set', async () => (await row.getText()).includes('Set (hidden)') && (await (await row.$('input')).getValue()) === '');

  const kept = execFileSync('secret-tool', ['lookup', 'service', 'org.casewire.desktop', 'username', 'KAFKA_SASL_PASSWORD']).toString();
  assert.equal(kept, secret, 'the keyring holds the password');
  const file = readFileSync(join(data, 'desktop-settings.json'), 'utf8');
  assert.ok(file.includes(tansu.brokers), 'the settings file holds the other settings');
  assert.ok(!file.includes(secret), 'the settings file never holds the password');
  assert.ok(!readFileSync(join(data, 'tauri-driver.log'), 'utf8').includes(secret), 'the logs never hold it');

  // Unset again, so the relay talks to the broker without SASL as before.
  await dismissToasts();
  await (await row.$('button=Back to default')).click();
  await until('the screen says it is unset', async () => (await row.getText()).includes('Not set'));
  await until('the keyring entry is gone', () => {
    try {
      execFileSync('secret-tool', ['lookup', 'service', 'org.casewire.desktop', 'username', 'KAFKA_SASL_PASSWORD']);
      return false;
    } catch {
      return true; // secret-tool exits 1 when nothing matches
    }
  });
});

/** Dismisses the toasts, which may cover a row's buttons, as a person would. */
async function dismissToasts() {
  for (const dismiss of await browser.$$('//button[normalize-space(.)="Dismiss"]')) {
    await dismiss.click().catch(() => {});
  }
  await until('the toasts are gone', async () => (await browser.$$('//button[normalize-space(.)="Dismiss"]')).length === 0);
}

/**
 * Saves `value` for the setting `key` on the settings screen, or puts it back to its default
 * (`null`), and waits until the screen says it is done; a refusal fails with the row's words.
 */
async function setSetting(key, value) {
  const row = await browser.$(`tr[data-setting=${key}]`);
  await row.waitForDisplayed({ timeout: PATIENCE });
  await dismissToasts();
  const done = value === null ? `${key} is back to its default.` : `${key} saved.`;
  let button;
  if (value === null) {
    button = await row.$('button=Back to default');
    if (!(await button.isExisting())) return;
  } else {
    await (await row.$('input')).setValue(value);
    button = await row.$('button[type=submit]');
  }
  // A toast that arrives meanwhile (the relay's news) may cover the button, as it would a
  // person's pointer: they would dismiss it and click again. A row at the very bottom of the
  // window is then clicked through the page itself (WebKitWebDriver reports the click there
  // as intercepted even with nothing over it).
  await button.click().catch(async (e) => {
    if (!/click intercepted/.test(e.message)) throw e;
    await dismissToasts();
    await button.scrollIntoView({ block: 'center' });
    await button.click().catch(() => browser.execute((b) => b.click(), button));
  });
  await until(`the screen says ${done}`, async () => (await (await browser.$('body')).getText()).includes(done)).catch(async (e) => {
    throw new Error(`${e.message}; the row says ${await row.getText()}`);
  });
}

test('a wrong SASL password set on the settings screen is shown as Kafka refusing the sign-in, and once corrected there the waiting events are delivered', async () => {
  secure = await startSecureKafka(data);
  await browser.execute(() => (location.hash = '#/settings'));
  // Each change is checked whole: with no brokers the relay is off while SASL is set up.
  await setSetting('KAFKA_BROKERS', null);
  await setSetting('KAFKA_SECURITY_PROTOCOL', 'sasl_ssl');
  await setSetting('KAFKA_SASL_MECHANISM', secure.mechanism);
  await setSetting('KAFKA_SASL_USERNAME', secure.username);
  await setSetting('KAFKA_SSL_CA_LOCATION', secure.ca);
  await setSetting('KAFKA_SASL_PASSWORD', 'not-the-Scram-password');
  await setSetting('KAFKA_BROKERS', secure.brokers);

  // Work done meanwhile waits on this laptop.
  await browser.execute(() => (location.hash = '#/cases'));
  await (await button(browser, 'New case')).click();
  await (await browser.$('input[name=title]')).setValue('Mule accounts behind a proxy');
  await (await button(browser, 'Open case')).click();
  const waiting = await until('the case opens', async () => /CASE-\d{4}-\d{3}/.exec(await main())?.[0]);
  // The badge's second line, as its text: WebKitWebDriver leaves a clipped line out of getText.
  const badgeDetail = () => browser.execute(() => document.querySelector('#sync-detail')?.textContent ?? '');
  let said = '';
  await until('the badge says Kafka refused the sign-in', async () => {
    said = await badgeDetail();
    return /Kafka refused the sign-in \(SASL\)/.test(said);
  }, 60_000).catch((e) => {
    throw new Error(`${e.message}; the badge says ${JSON.stringify(said)}`);
  });
  const header = await (await browser.$('header')).getText();
  assert.match(header, /Delivery error · \d+ waiting/);
  assert.match(await main(), /Waiting on this laptop/);
  screenshot('kafka-refused');

  await browser.execute(() => (location.hash = '#/settings'));
  await setSetting('KAFKA_SASL_PASSWORD', secure.password);
  await until('the badge says everything is synced', async () => /Synced/.test(await (await browser.$('header')).getText()), 60_000);
  await browser.execute((id) => (location.hash = `#/cases/${id}`), waiting);
  await until('the case\'s timeline says its events were delivered', async () => {
    const t = await main();
    return /Delivered/.test(t) && !/Waiting on this laptop/.test(t);
  });
  assert.ok(!readFileSync(join(data, 'desktop-settings.json'), 'utf8').includes(secure.password), 'the password is not in the settings file');

  // Back to the broker without SASL for the tests after this one.
  await browser.execute(() => (location.hash = '#/settings'));
  await setSetting('KAFKA_BROKERS', null);
  for (const key of ['KAFKA_SASL_PASSWORD', 'KAFKA_SSL_CA_LOCATION', 'KAFKA_SASL_USERNAME', 'KAFKA_SASL_MECHANISM', 'KAFKA_SECURITY_PROTOCOL']) {
    await setSetting(key, null);
  }
  await setSetting('KAFKA_BROKERS', tansu.brokers);
  await until('the badge says everything is synced', async () => /Synced/.test(await (await browser.$('header')).getText()), 60_000);
});

test('closing the window keeps the app in the tray, a second launch brings it back, and Quit from the tray ends it', async () => {
  const [window] = visibleWindows();
  assert.ok(window, 'the window is on screen');
  closeWindow(window);
  await until('the window is hidden', () => visibleWindows().length === 0);
  assert.equal(appProcesses().roots.length, 1, 'the app keeps running');
  const told = await until('a notification says the app keeps sending', () =>
    notificationsShown().find((n) => n.summary === 'Casewire is still sending'),
  );
  assert.match(told.body, /Quit from the tray icon/);

  // A second launch hands over to the first and exits; the window comes back.
  const second = spawn(APP, [], { env, stdio: 'ignore' });
  const code = await new Promise((resolve) => second.on('exit', resolve));
  assert.equal(code, 0, 'the second launch exits cleanly');
  await until('the window is back on screen', () => visibleWindows().length === 1);
  assert.equal(appProcesses().roots.length, 1, 'still one app');

  // Closed again, it is not told a second time; the tray's Open brings it back.
  closeWindow(visibleWindows()[0]);
  await until('the window is hidden again', () => visibleWindows().length === 0);
  trayClick('Open Casewire');
  await until('the tray opened it', () => visibleWindows().length === 1);
  assert.equal(notificationsShown().filter((n) => n.summary === 'Casewire is still sending').length, 1, 'told once');

  trayClick('Quit');
  await until('the app has quit', async () => appProcesses().roots.length === 0, 20_000);
  await browser.deleteSession().catch(() => {});
  browser = null;
});

test('an event deleted from the encrypted database file with the keyring\'s key is named by the window\'s Check timeline', async () => {
  assert.ok(caseId, 'the first scenario opened a case');
  const db = readFileSync(join(data, 'outbox.db'));
  assert.notEqual(db.subarray(0, 15).toString('latin1'), 'SQLite format 3', 'the database file is encrypted');
  // What someone with the laptop, its account and so its keyring could do.
  const tamper = process.env.TAMPER_TIMELINE_BIN;
  assert.ok(tamper, 'TAMPER_TIMELINE_BIN names the tamper-timeline binary (scripts/desktop-e2e sets it)');
  const deleted = execFileSync(tamper, [data, caseId], { env }).toString().trim();
  assert.match(deleted, /^evt_\d+_[0-9a-f]+$/, deleted);

  browser = await driver.launch();
  await signIn(browser, 'chief', PASSWORD);
  await browser.execute((id) => (location.hash = `#/cases/${id}`), caseId);
  await until('the case\'s timeline shows', async () => /Case opened/.test(await main()));
  await (await button(browser, 'Check timeline')).click();
  const said = await until('the check says the timeline was changed', async () => {
    const check = await browser.$('[data-testid="timeline-check"]');
    const t = (await check.isExisting()) ? await check.getText() : '';
    return /changed outside Casewire/.test(t) && t;
  });
  assert.match(said, /Deleted:.*event 2 of the chain is missing from the timeline/s, said);
  assert.match(said, /critical alert/, said);
  screenshot('timeline-tampered');
  await browser.deleteSession().catch(() => {});
  browser = null;
  killApps();
  await until('the app is gone', async () => appProcesses().roots.length === 0);
});

test('with a chain set up, the Queue screen names the anchoring address kept in the keyring and its empty balance; funded, the evidence is anchored and the timeline check has the chain confirm its head', async () => {
  assert.ok(caseId, 'the first scenario opened a case');
  const anvil = await startAnvil(await freePort());
  const chained = await Driver.start(
    appEnv(data, { CASEWIRE_CHAIN_RPC_URL: anvil.url, CASEWIRE_CHAIN_ID: '31337', CASEWIRE_ANCHOR_CONFIRMATIONS: '1', CASEWIRE_ANCHOR_POLL_MS: '200' }),
    data,
  );
  let window;
  const shown = async () => (await window.$('main')).getText();
  try {
    window = await chained.launch();
    await signIn(window, 'chief', PASSWORD);
    await window.execute(() => (location.hash = '#/queue'));
    const address = await until('the anchoring address shows', async () => {
      const el = await window.$('[data-testid="anchoring"] [data-hash]');
      return (await el.isExisting()) && (await el.getText());
    });
    assert.match(address, /^0x[0-9a-fA-F]{40}$/, address);
    // Made on this first start with a chain, in the OS keyring (not a file), never shown.
    const kept = execFileSync('secret-tool', ['lookup', 'service', 'org.casewire.anchor-key', 'username', data], { env }).toString().trim();
    assert.match(kept, /^[0-9a-f]{64}$/, 'the keyring holds a 32-byte key');
    assert.ok(!(await shown()).includes(kept), 'the key is not on the screen');
    const panel = await until('the balance shows', async () => {
      const t = await (await window.$('[data-testid="anchoring"]')).getText();
      return /of the chain’s coin/.test(t) && t;
    });
    assert.match(panel, /(^|\s)0 of the chain’s coin/, panel);
    assert.match(panel, /no coin to pay gas with/, panel);
    await inView(window, '[data-testid="anchoring"]');
    screenshot('anchoring-unfunded');

    await anvil.rpc('anvil_setBalance', [address, '0xde0b6b3a7640000']);
    await window.execute((id) => (location.hash = `#/cases/${id}`), caseId);
    await (await window.$('=wallet-ledger.csv')).click();
    await (await button(window, 'Anchor on chain')).click();
    await until('the evidence is anchored', async () => (await window.$('[data-anchor-state="anchored"]')).isExisting(), 60_000);
    screenshot('evidence-anchored');

    await window.execute((id) => (location.hash = `#/cases/${id}`), caseId);
    await until('the case\'s timeline shows', async () => /Timeline anchored on chain/.test(await shown()));
    await (await button(window, 'Check timeline')).click();
    const said = await until('the check names the anchored head', async () => {
      const check = await window.$('[data-testid="timeline-check"]');
      const t = (await check.isExisting()) ? await check.getText() : '';
      return /The chain confirms that anchor/.test(t) && t;
    });
    // The deletion before the anchor stays named; the anchored head holds on chain.
    assert.match(said, /event 2 of the chain is missing/, said);
    await inView(window, '[data-testid="timeline-check"]');
    screenshot('timeline-anchored-check');
  } finally {
    await window?.deleteSession().catch(() => {});
    chained.stop();
    killApps();
    await anvil.stop();
  }
});

test('without a working D-Bus session the app still starts and works: no tray, keyring or notifications', async () => {
  // A session bus that is gone (a stale address, as after the desktop session ended).
  const alone = mkdtempSync(join(tmpdir(), 'casewire-desktop-nobus-'));
  const noBus = appEnv(alone, { DBUS_SESSION_BUS_ADDRESS: 'unix:path=/nonexistent/casewire-test-bus' });
  const lonely = await Driver.start(noBus, alone);
  let window;
  try {
    window = await lonely.launch();
    await until('the first-run screen shows', async () => /Set up Casewire/.test(await text(window, 'h1')));
    await firstRun(window, 'chief', PASSWORD);
    await (await button(window, 'New case')).click();
    await (await window.$('input[name=title]')).setValue('Offline laptop, no desktop session');
    await (await button(window, 'Open case')).click();
    await until('the case opens', async () => /CASE-\d{4}-\d{3}/.test(await (await window.$('main')).getText()));
    // Closing the window still hides it (the notification that would say so has nowhere to go).
    closeWindow(visibleWindows()[0]);
    await until('the window is hidden', () => visibleWindows().length === 0);
    assert.equal(appProcesses().roots.length, 1, 'the app runs on');
  } finally {
    await window?.deleteSession().catch(() => {});
    lonely.stop();
    killApps();
  }
});
