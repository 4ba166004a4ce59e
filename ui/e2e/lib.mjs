// Helpers for the browser tests: a fresh `casewire serve`, an optional tansu broker, Chromium.
import { spawn } from 'node:child_process';
import { mkdtemp, mkdir, writeFile, rm } from 'node:fs/promises';
import { createServer, Socket } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { until } from '../../tests/wait.mjs';
import { startAnvil as startAnvilNode } from '../../tests/anvil.mjs';

export const UI_DIR = join(dirname(fileURLToPath(import.meta.url)), '..');
export const SHOTS = join(UI_DIR, 'e2e', 'screenshots');
export const BIN = process.env.CASEWIRE_BIN ?? join(homedir(), '.cache/casewire/target/debug/casewire');
export const TANSU = process.env.TANSU_BIN ?? join(homedir(), '.cache/casewire/bin/tansu');
export const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';
export { ANVIL } from '../../tests/anvil.mjs';
/** Anvil's first dev account's key: public, funded on every anvil chain; tests only. */
export const ANVIL_DEV_KEY = 'ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80';
export const PASSWORD = 'correct horse battery staple';

// Children started here are killed if the test process ends early (a failed test, a timeout).
const children = new Set();
function track(child) {
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

export async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

export { until };

function collect(child, name, logs) {
  const lines = [];
  const waiters = [];
  for (const stream of [child.stdout, child.stderr]) {
    let buf = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk) => {
      logs.push(chunk);
      buf += chunk;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        lines.push(line);
        for (const w of [...waiters]) if (w.re.test(line)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(line); }
      }
    });
  }
  return {
    lines,
    waitFor(re, ms = 15_000) {
      const hit = lines.find((l) => re.test(l));
      if (hit) return Promise.resolve(hit);
      return new Promise((resolve, reject) => {
        const w = { re, resolve };
        waiters.push(w);
        setTimeout(() => {
          const k = waiters.indexOf(w);
          if (k >= 0) { waiters.splice(k, 1); reject(new Error(`${name}: no line matching ${re} within ${ms} ms`)); }
        }, ms).unref();
      });
    },
  };
}

/**
 * Starts `casewire serve` on a free loopback port with a fresh data directory.
 * `kafkaPort`: relay to 127.0.0.1:kafkaPort (a broker may or may not be listening there).
 * `dataDir`: serve an existing data directory (one a stopped server kept) instead of a new one.
 */
export async function startServer({ name = 'casewire', kafkaPort = null, env = {}, toml = null, dataDir: reuse = null } = {}) {
  const port = await freePort();
  const dataDir = reuse ?? (await mkdtemp(join(tmpdir(), 'casewire-e2e-')));
  if (toml) await writeFile(join(dataDir, 'casewire.toml'), toml);
  const childEnv = {
    ...process.env,
    CASEWIRE_LISTEN: `127.0.0.1:${port}`,
    CASEWIRE_DATA_DIR: dataDir,
    // Beside the data folder, never in it.
    CASEWIRE_KEY_FILE: `${dataDir}.key`,
    RUST_LOG: process.env.RUST_LOG ?? 'info',
    NO_COLOR: '1',
    ...env,
  };
  if (kafkaPort) {
    childEnv.KAFKA_BROKERS = `127.0.0.1:${kafkaPort}`;
    childEnv.RETRY_INTERVAL ??= '1000';
  } else {
    delete childEnv.KAFKA_BROKERS;
  }
  const logs = [];
  const child = track(spawn(BIN, ['serve'], { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] }));
  const out = collect(child, name, logs);
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const url = `http://127.0.0.1:${port}`;
  await Promise.race([
    until(`${name} /healthz`, async () => (await fetch(`${url}/healthz`)).ok, 30_000),
    exited.then((e) => { throw new Error(`${name} exited early (${JSON.stringify(e)}):\n${logs.join('')}`); }),
  ]);
  let setupCode = null;
  try {
    // Strip ANSI colours before matching, in case the log is coloured.
    const line = await out.waitFor(/setup code:/i, 3_000);
    setupCode = /setup code:\s*([A-Z0-9]{4}-[A-Z0-9]{4})/i.exec(line.replace(/\x1b\[[0-9;]*m/g, ''))?.[1] ?? null;
  } catch {
    setupCode = null;
  }
  return {
    url,
    port,
    dataDir,
    setupCode,
    logs,
    waitForLog: out.waitFor,
    /** Stops the server; `keep` leaves its data directory (and key file) for another start. */
    async stop({ keep = false } = {}) {
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
      if (!keep) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export async function startTansu(port) {
  const child = track(spawn(TANSU, ['broker', '--listener-url', `tcp://127.0.0.1:${port}`, '--advertised-listener-url', `tcp://127.0.0.1:${port}`, '--storage-engine', 'memory://tansu/'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RUST_LOG: 'warn' },
  }));
  const logs = [];
  collect(child, 'tansu', logs);
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  await until('tansu to listen', () => new Promise((resolve) => {
    const s = new Socket();
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
    s.connect(port, '127.0.0.1');
  }), 20_000);
  return {
    logs,
    async stop() {
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
}

/**
 * Starts foundry's anvil EVM node (chain 31337) on a free loopback port, with a temporary HOME
 * (it writes under ~/.foundry). `rpc(method, params)` calls it; `env(keyFile)` is the chain
 * settings for `startServer`, with the anchoring key in `keyFile`.
 */
export async function startAnvil() {
  const logs = [];
  const node = await startAnvilNode(await freePort(), (child) => {
    track(child);
    collect(child, 'anvil', logs);
  });
  return {
    ...node,
    async env(dir) {
      const keyFile = join(dir, 'anchor.key');
      await writeFile(keyFile, `${ANVIL_DEV_KEY}\n`, { mode: 0o600 });
      return {
        CASEWIRE_CHAIN_RPC_URL: node.url,
        CASEWIRE_CHAIN_ID: '31337',
        CASEWIRE_ANCHOR_CONFIRMATIONS: '1',
        CASEWIRE_ANCHOR_POLL_MS: '100',
        CASEWIRE_ANCHOR_KEY_FILE: keyFile,
      };
    },
  };
}

/** A JSON API call from the test itself (seeding data); throws with the server's error. */
export async function apiCall(server, method, path, { token, body } = {}) {
  const headers = { Accept: 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(`${server.url}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const json = await res.json().catch(() => null);
  if (!res.ok) throw new Error(`${method} ${path} → ${res.status} ${JSON.stringify(json)}`);
  return json;
}

/** Uploads a text file as evidence of `caseId` through the guide's form; returns the record. */
export async function uploadEvidence(server, token, { caseId, name, text, wallet = '0x' + 'ab'.repeat(20), riskLevel = null }) {
  const form = new FormData();
  form.append('caseId', caseId);
  form.append('wallet', wallet);
  form.append('reporter', 'root');
  if (riskLevel) form.append('riskLevel', riskLevel);
  form.append('evidenceFile', new Blob([text], { type: 'text/plain' }), name);
  const res = await fetch(`${server.url}/api/evidence/upload`, { method: 'POST', headers: { Authorization: `Bearer ${token}` }, body: form });
  if (res.status !== 201) throw new Error(`upload of ${name} → ${res.status} ${await res.text()}`);
  return (await res.json()).evidence;
}

/** Creates the first superadmin through the setup route; returns its token. */
export async function setupSuperadmin(server, username = 'root') {
  const answer = await apiCall(server, 'POST', '/api/setup', { body: { username, password: PASSWORD, setupCode: server.setupCode ?? undefined } });
  return answer.token;
}

export async function login(server, username, password = PASSWORD) {
  return (await apiCall(server, 'POST', '/api/auth/login', { body: { username, password } })).token;
}

export async function launch() {
  const profile = await mkdtemp(join(tmpdir(), 'casewire-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    viewport: { width: 1280, height: 860 },
    acceptDownloads: true,
    locale: 'en-GB',
    timezoneId: 'UTC',
  });
  context.setDefaultTimeout(15_000);
  const problems = [];
  context.on('page', (page) => watch(page, problems));
  for (const page of context.pages()) watch(page, problems);
  return {
    context,
    problems,
    async close() {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}

function watch(page, problems) {
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy|Refused to/i.test(m.text())) problems.push(`csp: ${m.text()}`);
  });
}

export async function ensureDir(dir) {
  await mkdir(dir, { recursive: true });
}

import { createServer as createHttpServer, request as httpRequest } from 'node:http';
import { readFile } from 'node:fs/promises';

// The backend's page policy (crates/casewire-server/src/ui.rs), applied by the stand-in too.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css', '.svg': 'image/svg+xml', '.png': 'image/png' };

/**
 * The page's origin. `casewire serve` serves the built UI at `/` when the binary embeds it; a
 * binary built before `ui/dist` existed does not, so then a stand-in serves `ui/dist` with the
 * same CSP and forwards everything else to the backend (same origin for the page either way).
 */
export async function uiOrigin(server) {
  const res = await fetch(`${server.url}/`);
  const text = await res.text();
  if (res.ok && text.includes('<div id="app">')) return { url: server.url, standIn: false, close: async () => {} };
  console.warn(`# ${server.url}/ does not serve the UI (status ${res.status}); serving ui/dist from a stand-in`);
  const dist = join(UI_DIR, 'dist');
  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  const http = createHttpServer(async (req, res) => {
    const path = new URL(req.url, origin).pathname;
    if (path.startsWith('/api/') || path === '/metrics' || path === '/healthz' || path === '/readyz') {
      const headers = { ...req.headers, host: `127.0.0.1:${server.port}` };
      if (headers.origin) headers.origin = server.url;
      const upstream = httpRequest({ host: '127.0.0.1', port: server.port, method: req.method, path: req.url, headers }, (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      });
      upstream.on('error', () => { res.writeHead(502); res.end(); });
      req.pipe(upstream);
      return;
    }
    const file = path === '/' ? '/index.html' : path;
    try {
      const body = await readFile(join(dist, file));
      res.writeHead(200, { 'Content-Type': TYPES[file.slice(file.lastIndexOf('.'))] ?? 'application/octet-stream', 'Content-Security-Policy': CSP });
      res.end(body);
    } catch {
      res.writeHead(404);
      res.end('not found');
    }
  });
  await new Promise((resolve) => http.listen(port, '127.0.0.1', resolve));
  return { url: origin, standIn: true, close: () => new Promise((r) => http.close(() => r())) };
}
