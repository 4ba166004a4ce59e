// The Linux package as a person installs it (run by scripts/package-test, which builds version
// N and N+1 and runs this inside a desktop session of its own, as root for apt-get). One home
// folder throughout, so the app keeps its data where it does for anyone ($HOME/.local/share/casewire):
//  - N installed with apt-get: the installed app shows its first screen and answers through
//    its backend, events are queued with no broker, a setting is changed;
//  - N+1 installed over it while the app runs: every queued event and the setting are kept,
//    and the events are delivered once a broker is set;
//  - N installed again updates itself from a signed manifest on a local HTTPS server (the
//    update setting's endpoint and CA, as an organisation's mirror): nothing is asked while
//    looking is off, a package signed by another key is refused with the app still at N, and
//    the right one is installed and the app restarts as N+1 with every queued event;
//  - N installed back over a database N+1 has marked newer: the app refuses to start, says
//    why, and leaves the files as they were;
//  - the package removed: the programs go, the user's data stays.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, existsSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:https';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { manifest } from '../../scripts/updater-manifest.mjs';
import { APP, Driver, appEnv, appProcesses, button, firstRun, killApps, screenshot, signIn, startTansu, text, trayClick, until } from './harness.mjs';

const OLD = process.env.CASEWIRE_PACKAGE_OLD;
const NEW = process.env.CASEWIRE_PACKAGE_NEW;
const OLD_VERSION = process.env.CASEWIRE_VERSION_OLD;
const NEW_VERSION = process.env.CASEWIRE_VERSION_NEW;
const NEW_SIG = process.env.CASEWIRE_PACKAGE_NEW_SIG;
const STRANGER_SIG = process.env.CASEWIRE_PACKAGE_STRANGER_SIG;
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

let updates;

after(async () => {
  await browser?.deleteSession().catch(() => {});
  driver?.stop();
  updates?.close();
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

/**
 * An HTTPS server on loopback with a certificate from a CA made here, serving a release the
 * way the release workflow publishes one: `latest.json` made by scripts/updater-manifest.mjs
 * from a folder of signed packages (swapped between the test's two), and the packages. It
 * records every request, so the test can tell that nothing was asked.
 */
async function updateServer(dir) {
  const ssl = (...args) => execFileSync('openssl', args, { stdio: 'ignore' });
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=Casewire test update CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    '-keyout', join(dir, 'ca.key'), '-out', join(dir, 'ca.pem'));
  ssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-keyout', join(dir, 'server.key'), '-out', join(dir, 'server.csr'));
  writeFileSync(join(dir, 'server.ext'), 'subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n');
  ssl('x509', '-req', '-days', '2', '-in', join(dir, 'server.csr'), '-CA', join(dir, 'ca.pem'), '-CAkey', join(dir, 'ca.key'),
    '-CAcreateserial', '-extfile', join(dir, 'server.ext'), '-out', join(dir, 'server.pem'));
  // The package N+1 under the name the bundler gives it, beside its signature: the release's
  // own, or one made by another key.
  const pkg = `Casewire_${NEW_VERSION}_amd64.deb`;
  const folders = {};
  for (const [name, sig] of [['signed', NEW_SIG], ['stranger', STRANGER_SIG]]) {
    folders[name] = join(dir, name);
    mkdirSync(folders[name]);
    symlinkSync(NEW, join(folders[name], pkg));
    copyFileSync(sig, join(folders[name], `${pkg}.sig`));
  }
  const state = { requests: [], release: 'signed' };
  const server = createServer({ key: readFileSync(join(dir, 'server.key')), cert: readFileSync(join(dir, 'server.pem')) }, (req, res) => {
    state.requests.push(req.url);
    const folder = folders[state.release];
    if (req.url === '/latest.json') {
      const latest = manifest({ version: NEW_VERSION, urlBase: `https://localhost:${server.address().port}/`, notes: 'Faster queue screen; clearer errors.', pubDate: '2026-12-01T09:00:00Z' }, [folder]);
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(latest));
    } else if (req.url === `/${pkg}`) {
      res.setHeader('content-type', 'application/vnd.debian.binary-package');
      res.end(readFileSync(join(folder, pkg)));
    } else {
      res.statusCode = 404;
      res.end();
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    state,
    ca: join(dir, 'ca.pem'),
    endpoint: `https://localhost:${server.address().port}/latest.json`,
    close: () => server.close(),
  };
}

/**
 * `read()`'s value, read again while the screen re-renders under it: an element found, then
 * replaced before it is read, is a stale element (CI saw one on the settings screen just after
 * navigating to it), not a failure.
 */
async function settled(what, read) {
  return (await until(what, async () => ({ value: await read() }), 30_000)).value;
}

/** The text of the settings screen's Updates panel. */
async function updatesPanel() {
  return until('the Updates panel shows', async () => {
    const panel = await browser.$('[data-testid=updates]');
    return (await panel.isDisplayed()) && panel.getText();
  }, 30_000);
}

/** The Updates panel's "look for updates" box, found afresh for each use. */
const allowBox = () => browser.$('[data-testid=updates] input[type=checkbox]');

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
  const lock = () => browser.$('tr[data-setting=CASEWIRE_IDLE_LOCK_MINUTES] input');
  await lock().waitForDisplayed({ timeout: 30_000 });
  assert.equal(await settled('the idle-lock setting is read', () => lock().getValue()), '45', 'the setting is kept');

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

test(`version ${OLD_VERSION} updates itself to ${NEW_VERSION} from a signed manifest, after refusing a package signed by another key`, async () => {
  assert.ok(NEW_SIG && STRANGER_SIG, 'CASEWIRE_PACKAGE_NEW_SIG and CASEWIRE_PACKAGE_STRANGER_SIG: the signatures (scripts/package-test makes them)');
  killApps();
  await until('no app runs', async () => appProcesses().roots.length === 0);
  apt('install', '-y', '-qq', '--allow-downgrades', OLD);
  assert.equal(installedVersion(), OLD_VERSION);
  // Headquarters is out of reach: what is queued now must survive the update.
  tansu?.stop();
  tansu = null;
  updates = await updateServer(mkdtempSync(join(tmpdir(), 'casewire-updates-')));
  driver.stop();
  driver = await Driver.start({ ...env, CASEWIRE_UPDATE_ENDPOINT: updates.endpoint, CASEWIRE_UPDATE_CA: updates.ca }, home);
  browser = await driver.launch();
  await signIn(browser, 'chief', PASSWORD);
  await (await button(browser, 'New case')).click();
  await (await browser.$('input[name=title]')).setValue('Queued before the self-update');
  await (await button(browser, 'Open case')).click();
  await until('the case opens', async () => /CASE-\d{4}-\d{3}/.test(await (await browser.$('main')).getText()));
  const waiting = await queuedIds();
  assert.ok(waiting.length >= 1, 'the new case\'s event waits');

  await browser.execute(() => (location.hash = '#/settings'));
  await until('the Updates panel says which version runs', async () => (await updatesPanel()).includes(`This is Casewire ${OLD_VERSION}`));
  assert.equal(await settled('the look-for-updates box is read', () => allowBox().isSelected()), false, 'looking for updates is off until the person turns it on');
  assert.deepEqual(updates.state.requests, [], 'nothing was asked of the update server');

  // A manifest whose signature was made by another key: offered, then refused at download.
  updates.state.release = 'stranger';
  await settled('the look-for-updates box is ticked', () => allowBox().click());
  await until('the update is offered', async () => (await updatesPanel()).includes(`Casewire ${NEW_VERSION} is available.`));
  assert.ok(updates.state.requests.includes('/latest.json'), `the manifest was asked for: ${updates.state.requests}`);
  screenshot('update-offered');
  await (await button(browser, 'Install and restart…')).click();
  await (await button(browser, 'Install and restart')).click();
  await until('the refusal is shown', async () => (await updatesPanel()).includes('it is not signed by the Casewire developers'));
  screenshot('update-refused');
  assert.equal(installedVersion(), OLD_VERSION, 'nothing was installed');
  const still = new Set(await queuedIds());
  assert.deepEqual(waiting.filter((id) => !still.has(id)), [], 'the app still runs and still holds its queue');

  // The package as the release signed it: installed, and the app restarts as the new version.
  updates.state.release = 'signed';
  await (await button(browser, 'Check now')).click();
  await until('the update is offered again', async () => (await updatesPanel()).includes(`Casewire ${NEW_VERSION} is available.`));
  const [before] = appProcesses().roots;
  await (await button(browser, 'Install and restart…')).click();
  await (await button(browser, 'Install and restart')).click();
  const restarted = await until('the app restarts as the new version', () => {
    const roots = appProcesses().roots.filter((pid) => pid !== before);
    return roots.length === 1 && !existsSync(`/proc/${before}`) ? roots[0] : null;
  }, 120_000);
  assert.equal(installedVersion(), NEW_VERSION, 'the package manager has the new version');
  assert.equal(readlinkSync(`/proc/${restarted}/exe`), APP, 'the new program runs, from the installed path');
  await browser.deleteSession().catch(() => {});
  // It runs on its own (not under the WebDriver session): end it from its tray, as a person would.
  await until('the restarted app has its tray', () => {
    try {
      trayClick('Quit');
      return true;
    } catch {
      return false;
    }
  });
  await until('the restarted app quits', async () => appProcesses().roots.length === 0);

  browser = await driver.launch();
  await signIn(browser, 'chief', PASSWORD);
  const after = new Set(await queuedIds());
  assert.deepEqual(waiting.filter((id) => !after.has(id)), [], 'every event queued before the update still waits');
  await browser.execute(() => (location.hash = '#/settings'));
  await until('the Updates panel says which version runs', async () => (await updatesPanel()).includes(`This is Casewire ${NEW_VERSION}`));
  assert.equal(await settled('the look-for-updates box is read', () => allowBox().isSelected()), true, 'the choice to look is kept');
  screenshot('updated');
  await browser.deleteSession().catch(() => {});
  browser = null;
  killApps();
  await until('the app is gone', async () => appProcesses().roots.length === 0);
});

test(`version ${OLD_VERSION} installed back over a newer database refuses to start, says why, and touches nothing`, async () => {
  killApps(); // a running app would take the launch over
  await until('no app runs', async () => appProcesses().roots.length === 0);
  // What a newer Casewire leaves behind: data in a format this one does not know. The outbox
  // is encrypted (its newer schema is refused the same way, tested in the outbox crate); the
  // file that holds its wrapped key says which format it is in.
  const outbox = join(data, 'outbox.db');
  const keysFile = join(data, 'keys.json');
  const keys = JSON.parse(readFileSync(keysFile, 'utf8'));
  writeFileSync(keysFile, JSON.stringify({ ...keys, version: 1000 }));
  const before = createHash('sha256').update(readFileSync(outbox)).update(readFileSync(keysFile)).digest('hex');
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
  assert.equal(createHash('sha256').update(readFileSync(outbox)).update(readFileSync(keysFile)).digest('hex'), before, 'the data is untouched');
});

test('removing the package takes the programs and leaves the data', async () => {
  apt('remove', '-y', '-qq', 'casewire');
  assert.ok(!existsSync('/usr/bin/casewire-desktop'), 'the app is gone');
  assert.ok(!existsSync('/usr/bin/casewire'), 'the command is gone');
  assert.ok(existsSync(join(data, 'outbox.db')), 'the outbox stays in the home folder');
  assert.ok(existsSync(join(data, 'desktop-settings.json')), 'so do the settings');
});
