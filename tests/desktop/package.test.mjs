// The Linux package as a person installs it (run by scripts/package-test, which builds version
// N and N+1 and runs this inside a desktop session of its own, as root for apt-get). One home
// folder throughout, so the app keeps its data where it does for anyone ($HOME/.local/share/casewire):
//  - N installed with apt-get: the installed app shows its first screen and answers through
//    its backend, events are queued with no broker, a setting is changed;
//  - N+1 installed over it while the app runs: every queued event and the setting are kept,
//    and the events are delivered once a broker is set;
//  - N installed back over a database N+1 has marked newer: the app refuses to start, says
//    why, and leaves the files as they were;
//  - the package removed: the programs go, the user's data stays.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { mkdtempSync, existsSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { APP, Driver, appEnv, appProcesses, button, firstRun, killApps, screenshot, signIn, startTansu, text, until } from './harness.mjs';

const OLD = process.env.CASEWIRE_PACKAGE_OLD;
const NEW = process.env.CASEWIRE_PACKAGE_NEW;
const OLD_VERSION = process.env.CASEWIRE_VERSION_OLD;
const NEW_VERSION = process.env.CASEWIRE_VERSION_NEW;
if (!OLD || !NEW) throw new Error('CASEWIRE_PACKAGE_OLD and CASEWIRE_PACKAGE_NEW: the packages to install (scripts/package-test builds them)');
assert.equal(APP, '/usr/bin/casewire-desktop', 'the installed app is tested, not a build');

const PASSWORD = 'correct horse battery staple';
const home = mkdtempSync(join(tmpdir(), 'casewire-home-'));
const data = join(home, '.local/share/casewire');
const env = appEnv(data, { HOME: home, CASEWIRE_DATA_DIR: null, XDG_DATA_HOME: null });
let driver;
let browser;
let tansu;
let queued;

after(async () => {
  await browser?.deleteSession().catch(() => {});
  driver?.stop();
  killApps();
  tansu?.stop();
  try {
    execFileSync('apt-get', ['remove', '-y', '-qq', 'casewire'], { stdio: 'ignore' });
  } catch {}
});

function apt(...args) {
  execFileSync('apt-get', [...args], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
}

function installedVersion() {
  return execFileSync('dpkg-query', ['-W', '-f', '${Version}', 'casewire']).toString();
}

/** The ids of the events queued on this laptop, as the queue screen lists them (its API). */
async function queuedIds() {
  const ids = await browser.executeAsync((done) => {
    const { token } = JSON.parse(sessionStorage.getItem('casewire.session') ?? '{}');
    fetch('casewire://localhost/api/queue/events?limit=1000', { headers: { authorization: `Bearer ${token}` } })
      .then((r) => r.json())
      .then((body) => done(body.events.map((e) => e.eventId)))
      .catch((e) => done(String(e)));
  });
  assert.ok(Array.isArray(ids), `the queue lists its events (${ids})`);
  return ids;
}

test(`version ${OLD_VERSION} installed with apt-get shows its first screen and answers; its command answers too`, async () => {
  apt('install', '-y', '-qq', OLD);
  assert.equal(installedVersion(), OLD_VERSION);
  assert.equal(execFileSync('casewire', ['--version']).toString().trim(), `casewire ${OLD_VERSION}`);
  // The service unit is installed, valid, and names the installed command.
  const verify = spawnSync('systemd-analyze', ['verify', '/usr/lib/systemd/system/casewire.service'], { encoding: 'utf8' });
  assert.equal(verify.status, 0, `systemd-analyze: ${verify.stderr}`);
  assert.doesNotMatch(verify.stderr, /casewire\.service/, `systemd-analyze: ${verify.stderr}`);

  driver = await Driver.start(env, home);
  browser = await driver.launch();
  assert.match(await text(browser, 'h1'), /Set up Casewire/);
  screenshot('installed-first-run');
  await firstRun(browser, 'chief', PASSWORD);
  await (await button(browser, 'New case')).click();
  await (await browser.$('input[name=title]')).setValue('Queued before the upgrade');
  await (await button(browser, 'Open case')).click();
  await until('the case opens', async () => /CASE-\d{4}-\d{3}/.test(await (await browser.$('main')).getText()));

  await browser.execute(() => (location.hash = '#/settings'));
  const row = await browser.$('tr[data-setting=CASEWIRE_IDLE_LOCK_MINUTES]');
  await row.waitForDisplayed({ timeout: 30_000 });
  await (await row.$('input')).setValue('45');
  await browser.keys('Enter');
  await until('the setting is saved', async () => (await (await browser.$('body')).getText()).includes('CASEWIRE_IDLE_LOCK_MINUTES saved.'));
  queued = await queuedIds();
  assert.ok(queued.length >= 3, `events wait on the laptop (${queued.length})`);
});

test(`upgrading to ${NEW_VERSION} while the app runs keeps every queued event and the settings, and delivers them`, async () => {
  assert.equal(appProcesses().roots.length, 1, 'the old app is running');
  apt('install', '-y', '-qq', NEW);
  assert.equal(installedVersion(), NEW_VERSION);
  assert.equal(execFileSync('casewire', ['--version']).toString().trim(), `casewire ${NEW_VERSION}`);

  // The running app is the old program until it is restarted.
  await browser.deleteSession().catch(() => {});
  killApps();
  await until('the old app is gone', async () => appProcesses().roots.length === 0);
  browser = await driver.launch();
  await signIn(browser, 'chief', PASSWORD);
  const after = new Set(await queuedIds());
  assert.deepEqual(queued.filter((id) => !after.has(id)), [], 'every event queued before the upgrade still waits');
  await browser.execute(() => (location.hash = '#/settings'));
  const lock = await browser.$('tr[data-setting=CASEWIRE_IDLE_LOCK_MINUTES]');
  await lock.waitForDisplayed({ timeout: 30_000 });
  assert.equal(await (await lock.$('input')).getValue(), '45', 'the setting is kept');

  tansu = await startTansu(home);
  const brokers = await browser.$('tr[data-setting=KAFKA_BROKERS]');
  await (await brokers.$('input')).setValue(tansu.brokers);
  await browser.keys('Enter');
  await until('everything is delivered', async () => /Synced/.test(await (await browser.$('header')).getText()), 60_000);
  assert.deepEqual(await queuedIds(), [], 'nothing waits any more');
  screenshot('upgraded-synced');
  await browser.deleteSession().catch(() => {});
  browser = null;
  killApps();
  await until('the app is gone', async () => appProcesses().roots.length === 0);
});

test(`version ${OLD_VERSION} installed back over a newer database refuses to start, says why, and touches nothing`, async () => {
  killApps(); // a running app would take the launch over
  await until('no app runs', async () => appProcesses().roots.length === 0);
  // What a newer Casewire leaves behind: an outbox whose schema this one does not know.
  const outbox = join(data, 'outbox.db');
  execFileSync('sqlite3', [outbox, 'PRAGMA user_version = 1000;']);
  const before = createHash('sha256').update(readFileSync(outbox)).digest('hex');
  apt('install', '-y', '-qq', '--allow-downgrades', OLD);
  assert.equal(installedVersion(), OLD_VERSION);

  const app = spawn(APP, [], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  app.stderr.on('data', (chunk) => (log += chunk));
  const exited = new Promise((resolve) => app.on('exit', resolve));
  // It says so in a dialog (and its log); the person dismisses it and the app ends.
  const dialog = await until('the refusal is shown', () => {
    try {
      return execFileSync('xdotool', ['search', '--sync', '--onlyvisible', '--name', '^Casewire$'], { timeout: 5_000 }).toString().trim().split('\n')[0];
    } catch {
      return null;
    }
  });
  await until('the log says why', () => /newer version of Casewire; upgrade to open it/.test(log));
  screenshot('downgrade-refused');
  execFileSync('xdotool', ['mousemove', '--window', dialog, '20', '20']);
  execFileSync('xdotool', ['key', 'Return']);
  const code = await exited;
  assert.notEqual(code, 0, 'the app does not run on a database it does not know');
  assert.equal(createHash('sha256').update(readFileSync(outbox)).digest('hex'), before, 'the outbox is untouched');
});

test('removing the package takes the programs and leaves the data', async () => {
  apt('remove', '-y', '-qq', 'casewire');
  assert.ok(!existsSync('/usr/bin/casewire-desktop'), 'the app is gone');
  assert.ok(!existsSync('/usr/bin/casewire'), 'the command is gone');
  assert.ok(existsSync(join(data, 'outbox.db')), 'the outbox stays in the home folder');
  assert.ok(existsSync(join(data, 'desktop-settings.json')), 'so do the settings');
});
