// What the desktop's tests and benchmarks share: the app's environment, tauri-driver and
// WebDriver sessions, the app's processes, their sockets and memory, screenshots of the X
// display, the GTK file dialogs typed into with xdotool, a file dragged onto the window, the
// tray's menu over D-Bus, the notification daemon's history, and a tansu broker.
//
// Env: CASEWIRE_DESKTOP_BIN (the app), TAURI_DRIVER (tauri-driver), SHOTS (screenshot folder).
import { spawn, execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, readlinkSync, openSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { remote } from 'webdriverio';
import { until as wait } from '../wait.mjs';

export const APP = process.env.CASEWIRE_DESKTOP_BIN ?? join(homedir(), '.cache/casewire/target/debug/casewire-desktop');
export const DRIVER = process.env.TAURI_DRIVER ?? join(homedir(), '.cache/casewire/bin/tauri-driver');
export const SHOTS = process.env.SHOTS ?? join(import.meta.dirname, '../../ui/e2e/screenshots');
export const PATIENCE = 30_000;
mkdirSync(SHOTS, { recursive: true });

export async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Whether something accepts TCP connections on the loopback `port`. */
export function listening(port) {
  return new Promise((resolve) => {
    const socket = new Socket();
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.connect(port, '127.0.0.1');
  });
}

/** Resolves when `predicate()` holds; fails with `what` after `ms` (polling every 150 ms). */
export function until(what, predicate, ms = PATIENCE) {
  return wait(what, predicate, ms, 150);
}

/** The app's environment with its data in `data`, plus `extra` (a null value unsets a variable). */
export function appEnv(data, extra = {}) {
  const env = {
    ...process.env,
    CASEWIRE_DATA_DIR: data,
    // WebKitGTK takes navigator.language from the locale; a bare "C" is not a language tag.
    LANG: process.env.LANG && !/^(C|POSIX)(\.|$)/.test(process.env.LANG) ? process.env.LANG : 'en_US.UTF-8',
    NO_AT_BRIDGE: '1',
    WEBKIT_DISABLE_COMPOSITING_MODE: '1',
    ...extra,
  };
  delete env.KAFKA_BROKERS;
  for (const [key, value] of Object.entries(extra)) if (value === null) delete env[key];
  return env;
}

/**
 * A tauri-driver: each `launch` starts the app (with the environment the driver was started
 * with) in a new WebDriver session.
 */
export class Driver {
  static async start(env, logDir) {
    const port = await freePort();
    const nativePort = await freePort();
    // In a process group of its own, with its output in a log: WebKitWebDriver, its child, must
    // go with it at the end and must not hold this process's output open.
    const log = openSync(join(logDir, 'tauri-driver.log'), 'a');
    const child = spawn(DRIVER, ['--port', String(port), '--native-port', String(nativePort)], {
      env,
      stdio: ['ignore', log, log],
      detached: true,
    });
    await until('tauri-driver listens', async () => {
      const r = await fetch(`http://127.0.0.1:${port}/status`).catch(() => null);
      return r !== null;
    });
    return new Driver(child, port);
  }

  constructor(child, port) {
    this.child = child;
    this.port = port;
  }

  launch() {
    return remote({
      hostname: '127.0.0.1',
      port: this.port,
      logLevel: 'warn',
      connectionRetryCount: 0,
      capabilities: { 'tauri:options': { application: APP } },
    });
  }

  stop() {
    try {
      process.kill(-this.child.pid, 'SIGKILL');
    } catch {}
  }
}

/** Kills every process of the app still running. */
export function killApps() {
  try {
    execFileSync('pkill', ['-KILL', '-f', APP]);
  } catch {}
}

/** The app's processes (`roots`) and their children (`family`: WebKit's web and network processes). */
export function appProcesses() {
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
export function tcpSocketsOf(pids) {
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

/** The port WebKitWebDriver told the app's WebKit to serve automation on, if any. */
function automationPort(pid) {
  const environ = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
  const server = environ.find((v) => v.startsWith('WEBKIT_INSPECTOR_SERVER='));
  return server ? Number(server.split(':').pop()) : null;
}

/** The app's TCP sockets but the automation port WebDriver asked for. */
export function ownSockets() {
  const { roots, family } = appProcesses();
  const skip = roots.map(automationPort).filter((p) => p !== null);
  const port = (address) => parseInt(address.split(':')[1], 16);
  return tcpSocketsOf(family).filter((s) => !skip.includes(port(s.local)) && !skip.includes(port(s.remote)));
}

/** When the process started, in ms since the epoch (to the kernel's 10 ms tick). */
export function startedAt(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const ticks = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
  const hz = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());
  // The boot time from the uptime (to 10 ms), not /proc/stat's btime (whole seconds).
  const uptime = Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
  const booted = Date.now() - uptime * 1000;
  return booted + (ticks * 1000) / hz;
}

/** Resident (RSS) and proportional (PSS) memory of the processes, in MiB: together and each. */
export function memoryOf(pids) {
  const each = [];
  for (const pid of pids) {
    try {
      const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
      const kib = (field) => Number(new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(rollup)[1]);
      const name = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
      each.push({ pid, name, rss: kib('Rss') / 1024, pss: kib('Pss') / 1024, anonymous: kib('Anonymous') / 1024 });
    } catch {}
  }
  const sum = (field) => each.reduce((total, p) => total + p[field], 0);
  return { rss: sum('rss'), pss: sum('pss'), anonymous: sum('anonymous'), each };
}

export function screenshot(name) {
  try {
    execFileSync('import', ['-window', 'root', join(SHOTS, `desktop-${name}.png`)]);
  } catch (e) {
    console.warn(`screenshot ${name} failed: ${e.message}`);
  }
}

export async function text(browser, selector) {
  const el = await browser.$(selector);
  await el.waitForDisplayed({ timeout: PATIENCE });
  return el.getText();
}

export async function button(browser, label) {
  const el = await browser.$(`//button[normalize-space(.)="${label}"]`);
  await el.waitForClickable({ timeout: PATIENCE });
  return el;
}

/** Whether the X window `id` is on screen. */
function onScreen(id) {
  try {
    return execFileSync('xdotool', ['search', '--onlyvisible', '--name', '.']).toString().split('\n').includes(id);
  } catch {
    return false;
  }
}

/**
 * Types `path` into the GTK file dialog titled `title`, as a person would, and waits for the
 * dialog to close on it. GTK checks a typed path asynchronously and offers no event to wait for
 * from outside, so Return comes after a bounded pause; on a busy machine the dialog may still
 * be completing the path then and stay open, and the path is typed again (at most three times).
 */
export async function chooseInDialog(title, path) {
  const id = execFileSync('xdotool', ['search', '--sync', '--onlyvisible', '--name', title], { timeout: PATIENCE })
    .toString()
    .trim()
    .split('\n')[0];
  for (let attempt = 1; ; attempt++) {
    // No window manager under Xvfb: the keyboard goes to the window under the pointer.
    execFileSync('xdotool', ['mousemove', '--window', id, '40', '40']);
    // The location entry (the name entry of a save dialog), its text selected, so typing replaces it.
    execFileSync('xdotool', ['key', '--clearmodifiers', 'ctrl+l', 'ctrl+a']);
    execFileSync('xdotool', ['type', '--delay', '40', path]);
    execFileSync('xdotool', ['sleep', '0.8', 'key', 'Return']);
    try {
      await until(`the "${title}" dialog closes`, () => !onScreen(id), 5_000);
      return;
    } catch (e) {
      if (attempt === 3) throw e;
    }
  }
}

/** Creates the first superadmin on the first-run screen and waits for the cases screen. */
export async function firstRun(browser, username, password) {
  await (await browser.$('input[name=username]')).setValue(username);
  await (await browser.$('input[name=password]')).setValue(password);
  await (await browser.$('input[name=confirm]')).setValue(password);
  await (await button(browser, 'Create superadmin and sign in')).click();
  await until('the cases screen shows', async () => /Cases/.test(await text(browser, 'h1')));
}

/** Signs in on the sign-in screen and waits for the cases screen. */
export async function signIn(browser, username, password) {
  await until('the sign-in screen shows', async () => /Sign in/.test(await text(browser, 'h1')));
  await (await browser.$('input[name=username]')).setValue(username);
  await (await browser.$('input[name=password]')).setValue(password);
  await (await browser.$('button[type=submit]')).click();
  await until('the cases screen shows', async () => /Cases/.test(await text(browser, 'h1')));
}

const TRAY_MENU = '/org/ayatana/NotificationItem/tray_icon_tray_app_casewire/Menu';

/** `gdbus call` on the session bus; method arguments go after a `--` (a -1 is not an option). */
function gdbus(args) {
  return execFileSync('gdbus', ['call', '--session', ...args], { timeout: 10_000, stdio: ['ignore', 'pipe', 'pipe'] }).toString();
}

/** The bus name that serves the tray's menu (libayatana-appindicator's dbusmenu), if any. */
function trayOwner() {
  const names = gdbus(['--dest', 'org.freedesktop.DBus', '--object-path', '/org/freedesktop/DBus', '--method', 'org.freedesktop.DBus.ListNames']);
  for (const [, name] of names.matchAll(/'(:\d+\.\d+)'/g)) {
    try {
      gdbus(['--dest', name, '--object-path', TRAY_MENU, '--method', 'com.canonical.dbusmenu.GetLayout', '--', '0', '-1', '@as []']);
      return name;
    } catch {}
  }
  return null;
}

/**
 * The tray menu's entries as a tray host reads them over D-Bus (com.canonical.dbusmenu):
 * `[{ id, label, enabled }]`, separators left out; `null` while the app has no tray.
 */
export function trayMenu() {
  const owner = trayOwner();
  if (!owner) return null;
  const layout = gdbus(['--dest', owner, '--object-path', TRAY_MENU, '--method', 'com.canonical.dbusmenu.GetLayout', '--', '0', '-1', '@as []']);
  const items = [];
  for (const [, id, props] of layout.matchAll(/\((\d+), \{([^{}]*)\}, (?:@av )?\[\]\)/g)) {
    const label = /'label': <'((?:[^'\\]|\\.)*)'>/.exec(props)?.[1];
    if (label === undefined) continue;
    items.push({ id: Number(id), label, enabled: !/'enabled': <false>/.test(props) });
  }
  return { owner, items };
}

/** Clicks the tray menu's entry labelled `label`, as a tray host does. */
export function trayClick(label) {
  const menu = trayMenu();
  const item = menu?.items.find((i) => i.label === label);
  if (!item) throw new Error(`no tray entry "${label}" in ${JSON.stringify(menu)}`);
  gdbus(['--dest', menu.owner, '--object-path', TRAY_MENU, '--method', 'com.canonical.dbusmenu.Event', '--', String(item.id), 'clicked', '<0>', '0']);
}

/** The app's top-level windows that are on screen. */
export function visibleWindows() {
  try {
    return execFileSync('xdotool', ['search', '--onlyvisible', '--name', '^Casewire$']).toString().trim().split('\n').filter(Boolean);
  } catch {
    return []; // xdotool exits 1 when nothing matches
  }
}

/** Asks the window to close, as a window manager's close button does. */
export function closeWindow(id) {
  execFileSync('python3', [join(import.meta.dirname, 'wm-close.py'), id]);
}

/** Whether someone on the session bus owns `name`. */
export function busNameOwned(name) {
  const answer = gdbus(['--dest', 'org.freedesktop.DBus', '--object-path', '/org/freedesktop/DBus', '--method', 'org.freedesktop.DBus.NameHasOwner', name]);
  return /true/.test(answer);
}

/** The notifications the notification daemon (dunst) has shown, newest first: `[{ summary, body }]`. */
export function notificationsShown() {
  // Notifications still on screen join the history when they are closed.
  execFileSync('dunstctl', ['close-all']);
  const history = JSON.parse(execFileSync('dunstctl', ['history']).toString());
  return (history.data ?? []).flat().map((n) => ({ summary: n.summary?.data ?? '', body: n.body?.data ?? '' }));
}

/** A tansu Kafka broker on a free loopback port, its data in memory. */
export async function startTansu(logDir) {
  const port = await freePort();
  const tansu = process.env.TANSU_BIN ?? join(homedir(), '.cache/casewire/bin/tansu');
  const log = openSync(join(logDir, 'tansu.log'), 'a');
  const child = spawn(tansu, ['broker', '--listener-url', `tcp://127.0.0.1:${port}`, '--advertised-listener-url', `tcp://127.0.0.1:${port}`, '--storage-engine', 'memory://tansu/'], {
    stdio: ['ignore', log, log],
    env: { ...process.env, RUST_LOG: 'warn' },
  });
  await until('tansu listens', () => listening(port));
  return { brokers: `127.0.0.1:${port}`, stop: () => child.kill('SIGKILL') };
}

/**
 * A broker that demands SASL/SCRAM over TLS on loopback: the Rust tests' own
 * (`casewire_testkit::secure_kafka`), through its `secure-kafka` binary, which says how to reach
 * it (`brokers`, `ca`, `otherCa`, `username`, `mechanism`, `password`) and runs until its stdin
 * closes.
 */
export async function startSecureKafka(logDir) {
  const bin = process.env.SECURE_KAFKA_BIN;
  if (!bin) throw new Error('SECURE_KAFKA_BIN names the secure-kafka binary (scripts/desktop-e2e sets it)');
  const log = openSync(join(logDir, 'secure-kafka.log'), 'a');
  const child = spawn(bin, [], { stdio: ['pipe', 'pipe', log] });
  let said = '';
  child.stdout.on('data', (chunk) => (said += chunk.toString()));
  await until('the secure broker says where it is', () => said.includes('\n'), 120_000);
  return { ...JSON.parse(said), stop: () => child.stdin.end() };
}

/**
 * Drags the file at `path` from another application's window (drag-source.py, GTK) and drops
 * it on the X window `target`, with the pointer, as a person drags from a file manager.
 */
export async function dropFileOn(target, path) {
  const source = spawn('/usr/bin/python3', [join(import.meta.dirname, 'drag-source.py'), path, '1300', '860'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const said = [];
  source.stdout.on('data', (chunk) => said.push(...chunk.toString().split('\n').filter(Boolean)));
  const xdotool = (...args) => execFileSync('xdotool', args.map(String));
  try {
    await until('the other application is on screen', () => said.includes('ready'));
    const id = execFileSync('xdotool', ['search', '--sync', '--onlyvisible', '--name', '^drag source$'], { timeout: PATIENCE })
      .toString()
      .trim()
      .split('\n')[0];
    xdotool('mousemove', '--window', id, 60, 40);
    xdotool('mousedown', 1);
    // GTK starts a drag once the pressed pointer has moved past its threshold.
    for (const dx of [8, 16, 24, 32]) xdotool('mousemove', '--window', id, 60 - dx, 40 - dx);
    await until('the drag began', () => said.includes('drag-begin'));
    for (const [x, y] of [[900, 600], [700, 500], [640, 420], [600, 400]]) xdotool('mousemove', '--window', target, x, y);
    xdotool('mouseup', 1);
    await until('the drop is over', () => said.includes('drag-end'));
    if (said.includes('drag-failed')) throw new Error(`the window refused the drop (${said.join(', ')})`);
  } finally {
    source.kill();
  }
}
