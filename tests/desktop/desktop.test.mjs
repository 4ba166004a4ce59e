// The real desktop window, driven through tauri-driver and WebKitWebDriver under Xvfb (run by
// scripts/desktop-e2e inside dbus-run-session and xvfb-run): first run, sign-in, evidence added
// from a file picked in the real GTK open dialog (typed into it with xdotool), the case and the
// sync badge updated, no TCP port open by any of the app's processes, and a SIGKILL of the app
// followed by a relaunch that shows everything acknowledged before the kill.
//
// Env: CASEWIRE_DESKTOP_BIN (the app), TAURI_DRIVER (tauri-driver), SHOTS (screenshot folder).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, mkdirSync, readFileSync, readdirSync, readlinkSync, openSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, homedir } from 'node:os';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { remote } from 'webdriverio';

const APP = process.env.CASEWIRE_DESKTOP_BIN ?? join(homedir(), '.cache/casewire/target/debug/casewire-desktop');
const DRIVER = process.env.TAURI_DRIVER ?? join(homedir(), '.cache/casewire/bin/tauri-driver');
const SHOTS = process.env.SHOTS ?? join(import.meta.dirname, '../../ui/e2e/screenshots');
const PASSWORD = 'correct horse battery staple';
const PATIENCE = 30_000;

mkdirSync(SHOTS, { recursive: true });
const data = mkdtempSync(join(tmpdir(), 'casewire-desktop-'));
// A folder whose name shares no prefix with its neighbours, so the open dialog's inline
// completion of a typed path can only complete it to itself.
const evidenceDir = join(tmpdir(), `q${randomBytes(6).toString('hex')}`);
mkdirSync(evidenceDir);
const evidencePath = join(evidenceDir, 'wallet-ledger.csv');
const evidence = 'date,wallet,amount\n2026-11-30,0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed,4.2\n';
writeFileSync(evidencePath, evidence);
const sha256 = createHash('sha256').update(evidence).digest('hex');

async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Resolves when `predicate()` holds; fails with `what` after PATIENCE. */
async function until(what, predicate, ms = PATIENCE) {
  const deadline = Date.now() + ms;
  let last;
  while (Date.now() < deadline) {
    try {
      last = await predicate();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 150));
  }
  throw new Error(`timed out waiting until ${what} (last: ${last})`);
}

const env = {
  ...process.env,
  CASEWIRE_DATA_DIR: data,
  // WebKitGTK takes navigator.language from the locale; a bare "C" is not a language tag.
  LANG: process.env.LANG && !/^(C|POSIX)(\.|$)/.test(process.env.LANG) ? process.env.LANG : 'en_US.UTF-8',
  NO_AT_BRIDGE: '1',
  WEBKIT_DISABLE_COMPOSITING_MODE: '1',
};
delete env.KAFKA_BROKERS;

let driver;
let port;
async function startDriver() {
  port = await freePort();
  const nativePort = await freePort();
  // In a process group of its own, with its output in a log: WebKitWebDriver, its child, must
  // go with it at the end and must not hold this process's output open.
  const log = openSync(join(data, 'tauri-driver.log'), 'a');
  driver = spawn(DRIVER, ['--port', String(port), '--native-port', String(nativePort)], {
    env,
    stdio: ['ignore', log, log],
    detached: true,
  });
  await until('tauri-driver listens', async () => {
    const r = await fetch(`http://127.0.0.1:${port}/status`).catch(() => null);
    return r !== null;
  });
}

async function launch() {
  return remote({
    hostname: '127.0.0.1',
    port,
    logLevel: 'warn',
    connectionRetryCount: 0,
    capabilities: { 'tauri:options': { application: APP } },
  });
}

after(async () => {
  if (driver) {
    try {
      process.kill(-driver.pid, 'SIGKILL');
    } catch {}
  }
  try {
    execFileSync('pkill', ['-KILL', '-f', APP]);
  } catch {}
});

/** The app's process and its children (WebKit's web and network processes). */
function appProcesses() {
  const all = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  const parent = new Map();
  const exe = new Map();
  for (const pid of all) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      parent.set(pid, stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      exe.set(pid, readlinkSync(`/proc/${pid}/exe`));
    } catch {}
  }
  const roots = [...exe].filter(([, path]) => path === APP).map(([pid]) => pid);
  const family = new Set(roots);
  let grew = true;
  while (grew) {
    grew = false;
    for (const [pid, ppid] of parent) {
      if (family.has(ppid) && !family.has(pid)) {
        family.add(pid);
        grew = true;
      }
    }
  }
  return { roots, family: [...family] };
}

/** TCP sockets (v4 and v6, any state) whose inodes the processes hold open. */
function tcpSocketsOf(pids) {
  const inodes = new Set();
  for (const pid of pids) {
    try {
      for (const fd of readdirSync(`/proc/${pid}/fd`)) {
        const target = readlinkSync(`/proc/${pid}/fd/${fd}`);
        const m = /^socket:\[(\d+)\]$/.exec(target);
        if (m) inodes.add(m[1]);
      }
    } catch {}
  }
  const found = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length > 9 && inodes.has(cols[9])) found.push({ table, local: cols[1], remote: cols[2], state: cols[3] });
    }
  }
  return found;
}

function screenshot(name) {
  try {
    execFileSync('import', ['-window', 'root', join(SHOTS, `desktop-${name}.png`)]);
  } catch (e) {
    console.warn(`screenshot ${name} failed: ${e.message}`);
  }
}

async function text(browser, selector) {
  const el = await browser.$(selector);
  await el.waitForDisplayed({ timeout: PATIENCE });
  return el.getText();
}

async function button(browser, label) {
  const el = await browser.$(`//button[normalize-space(.)="${label}"]`);
  await el.waitForClickable({ timeout: PATIENCE });
  return el;
}

/** Types `path` into the GTK open dialog titled `title`, as a person would. */
function chooseInDialog(title, path) {
  const id = execFileSync('xdotool', ['search', '--sync', '--onlyvisible', '--name', title], { timeout: PATIENCE })
    .toString()
    .trim()
    .split('\n')[0];
  // No window manager under Xvfb: the keyboard goes to the window under the pointer.
  execFileSync('xdotool', ['mousemove', '--window', id, '40', '40']);
  execFileSync('xdotool', ['key', '--clearmodifiers', 'ctrl+l']);
  execFileSync('xdotool', ['type', '--delay', '40', path]);
  if (process.env.DEBUG_SOCKETS) screenshot('dialog-typed');
  // GTK checks a typed path asynchronously and offers no event to wait for from outside: the
  // one bounded pause of these tests, before Return opens it.
  execFileSync('xdotool', ['sleep', '0.8', 'key', 'Return']);
}

/** The port WebKitWebDriver told the app's WebKit to serve automation on, if any. */
function automationPort(pid) {
  const environ = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
  const server = environ.find((v) => v.startsWith('WEBKIT_INSPECTOR_SERVER='));
  return server ? Number(server.split(':').pop()) : null;
}

/** The app's TCP sockets but the automation port WebDriver asked for. */
function ownSockets() {
  const { roots, family } = appProcesses();
  const skip = roots.map(automationPort).filter((p) => p !== null);
  if (process.env.DEBUG_SOCKETS) console.log('automation ports', skip, tcpSocketsOf(family));
  const port = (address) => parseInt(address.split(':')[1], 16);
  return tcpSocketsOf(family).filter((s) => !skip.includes(port(s.local)) && !skip.includes(port(s.remote)));
}

let caseId;

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
  await startDriver();
  const browser = await launch();
  try {
    await investigate(browser);
  } finally {
    await browser.deleteSession().catch(() => {});
  }
});

async function investigate(browser) {
  const heading = await text(browser, 'h1');
  assert.match(heading, /Set up Casewire/);
  screenshot('first-run');

  // The window's backend answers through its scheme; the app's only TCP socket is the
  // automation port WebDriver itself asked WebKit for.
  assert.equal(appProcesses().roots.length, 1, 'one app process');
  assert.deepEqual(ownSockets(), [], 'the desktop opens no TCP socket of its own');

  await (await browser.$('input[name=username]')).setValue('chief');
  await (await browser.$('input[name=password]')).setValue(PASSWORD);
  await (await browser.$('input[name=confirm]')).setValue(PASSWORD);
  await (await button(browser, 'Create superadmin and sign in')).click();
  await until('the cases screen shows', async () => /Cases/.test(await text(browser, 'h1')));

  await (await button(browser, 'New case')).click();
  await (await browser.$('input[name=title]')).setValue('Exchange drained overnight');
  await (await button(browser, 'Open case')).click();
  caseId = await until('the case opens', async () => {
    const m = /CASE-\d{4}-\d{3}/.exec(await (await browser.$('main')).getText());
    return m?.[0];
  });

  await (await button(browser, 'Add evidence')).click();
  await (await button(browser, 'Choose files…')).click();
  chooseInDialog('Add evidence', evidencePath);
  await until('the picked file is listed', async () => /wallet-ledger\.csv/.test(await (await browser.$('dialog[open]')).getText()));
  await (await browser.$('dialog[open] input[name=wallet]')).setValue('0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed');
  await (await browser.$('dialog[open] input[name=reporter]')).setValue('desk officer');
  await (await button(browser, 'Add to case')).click();
  await until('the evidence shows with its full SHA-256', async () => (await (await browser.$('main')).getText()).includes(sha256));

  // The timeline and the badge say the events wait on this laptop (no Kafka configured).
  const page = await (await browser.$('body')).getText();
  assert.match(page, /Waiting on this laptop/);
  const badge = await until('the badge counts the waiting events', async () => {
    const t = await (await browser.$('header')).getText();
    return /waiting/i.test(t) && t;
  });
  assert.match(badge, /\d+ waiting/i);
  screenshot('case-with-evidence');
  assert.deepEqual(ownSockets(), [], 'still no TCP socket of its own after the work');

  // A SIGKILL of the app: everything committed before it must be there after a relaunch.
  for (const pid of appProcesses().roots) process.kill(Number(pid), 'SIGKILL');
  await until('the app is gone', async () => appProcesses().roots.length === 0);
}

test('after a SIGKILL the relaunched app signs in and shows everything acknowledged before it', async () => {
  assert.ok(caseId, 'the first scenario opened a case');
  const browser = await launch();
  await until('the sign-in screen shows', async () => /Sign in/.test(await text(browser, 'h1')));
  await (await browser.$('input[name=username]')).setValue('chief');
  await (await browser.$('input[name=password]')).setValue(PASSWORD);
  await (await browser.$('button[type=submit]')).click();
  await until('the case is listed', async () => (await (await browser.$('main')).getText()).includes(caseId));
  await (await browser.$(`=${caseId}`)).click().catch(async () => {
    await browser.execute((id) => {
      location.hash = `#/cases/${id}`;
    }, caseId);
  });
  await until('the evidence survived with its hash', async () => (await (await browser.$('main')).getText()).includes(sha256));
  const timeline = await (await browser.$('main')).getText();
  assert.match(timeline, /Evidence added/);
  assert.match(timeline, /Case opened/);
  screenshot('after-relaunch');
  await browser.deleteSession();
});
