#!/usr/bin/env node
// Browser end-to-end tests against a real `casewire serve` (and a tansu broker where delivery
// matters). Usage: `npm run e2e` (builds the UI first), or `node e2e/run.mjs [name-filter]`.
// Env: CASEWIRE_BIN, TANSU_BIN, CHROMIUM_BIN, E2E_SKIP_BUILD=1.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { run } from 'node:test';
import { spec } from 'node:test/reporters';
import { BIN, TANSU, CHROMIUM, UI_DIR } from './lib.mjs';

for (const [what, path] of [['casewire (CASEWIRE_BIN)', BIN], ['chromium (CHROMIUM_BIN)', CHROMIUM]]) {
  if (!existsSync(path)) {
    console.error(`e2e: ${what} not found at ${path}`);
    process.exit(2);
  }
}
if (!existsSync(TANSU)) console.warn(`e2e: tansu not found at ${TANSU}; the delivery tests will fail`);

if (process.env.E2E_SKIP_BUILD !== '1') {
  const build = spawnSync('npx', ['vite', 'build', '--logLevel', 'warn'], { cwd: UI_DIR, stdio: 'inherit' });
  if (build.status !== 0) process.exit(build.status ?? 1);
}

const filter = process.argv[2];
const files = ['first-run', 'preferences', 'desktop', 'investigator', 'admin', 'screens'].map((f) => join(UI_DIR, 'e2e', `${f}.test.mjs`));
const stream = run({
  files,
  concurrency: 1,
  timeout: 240_000,
  ...(filter ? { testNamePatterns: [filter] } : {}),
});
let failed = 0;
stream.on('test:fail', (e) => {
  if (e.details?.type !== 'suite') failed += 1;
});
stream.compose(spec).pipe(process.stdout);
stream.on('end', () => {
  process.exitCode = failed ? 1 : 0;
});
