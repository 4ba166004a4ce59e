// Benchmarks of the real desktop app (run by scripts/desktop-bench in a desktop session of its
// own; BENCHMARKS.md, "Desktop and UI"). Figures, not assertions:
//  - cold start: from the app process's start (the kernel's record, /proc/PID/stat) to the
//    sign-in screen painted after the backend answered (the UI's "casewire:first-screen" user
//    timing mark), for DESKTOP_BENCH_LAUNCHES launches;
//  - memory: RSS and PSS of every process of the app (the shell and WebKit's web and network
//    processes) idle 10 s after sign-in;
//  - the queue screen: from navigating to it to its first page of events painted, with
//    1,000,000 events queued (DESKTOP_BENCH_QUEUE_DIR, filled by the script) and with a
//    handful (the reference), DESKTOP_BENCH_NAVIGATIONS times each.
// Prints a table, then one JSON line.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Driver, appEnv, appProcesses, firstRun, killApps, memoryOf, signIn, startedAt, text, until } from './harness.mjs';

const LAUNCHES = Number(process.env.DESKTOP_BENCH_LAUNCHES ?? 5);
const NAVIGATIONS = Number(process.env.DESKTOP_BENCH_NAVIGATIONS ?? 5);
const QUEUE_DIR = process.env.DESKTOP_BENCH_QUEUE_DIR;
if (!QUEUE_DIR) throw new Error('DESKTOP_BENCH_QUEUE_DIR: a data folder with the queue to open (scripts/desktop-bench fills one)');
const PASSWORD = 'correct horse battery staple';

const median = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
const fmt = (v) => v.map((x) => x.toFixed(0)).join(', ');

/** Ends the session and the app with it. */
async function close(browser) {
  await browser.deleteSession().catch(() => {});
  killApps();
  await until('the app is gone', async () => appProcesses().roots.length === 0);
}

/** Launches the app and reads how long it took from its process's start to the first screen. */
async function coldStart(driver) {
  const asked = Date.now();
  const browser = await driver.launch();
  const painted = await until('the first screen is painted', () =>
    browser.execute(() => {
      const mark = performance.getEntriesByName('casewire:first-screen', 'mark')[0];
      return mark ? performance.timeOrigin + mark.startTime : null;
    }),
  );
  const [pid] = appProcesses().roots;
  return { browser, fromProcess: painted - startedAt(pid), fromRequest: painted - asked };
}

/** Navigates to the queue screen and returns the ms until its first page of events is painted. */
async function queueFirstPage(browser) {
  const { ms, requests } = await navigateToQueue(browser);
  if (process.env.DESKTOP_BENCH_TRACE) console.log(`${ms.toFixed(0)} ms:\n  ${requests.join('\n  ')}`);
  return ms;
}

async function navigateToQueue(browser) {
  await browser.execute(() => (location.hash = '#/cases'));
  await until('the cases screen shows', async () => /Cases/.test(await text(browser, 'h1')));
  await browser.pause(300); // let the cases screen's own requests settle before the clock starts
  return browser.executeAsync((done) => {
    const start = performance.now();
    const shown = () => document.querySelector('[data-testid=queued-events] tbody tr[data-event-id]');
    const finish = () =>
      requestAnimationFrame(() =>
        setTimeout(() => {
          const requests = performance
            .getEntriesByType('resource')
            .filter((r) => r.startTime >= start)
            .map((r) => `${r.name.replace(/^.*?\/\/[^/]*/, '')} at ${Math.round(r.startTime - start)} for ${Math.round(r.duration)} ms`);
          done({ ms: performance.now() - start, requests });
        }),
      );
    const observer = new MutationObserver(() => {
      if (shown()) {
        observer.disconnect();
        finish();
      }
    });
    observer.observe(document.body, { childList: true, subtree: true });
    location.hash = '#/queue';
  });
}

// The app as a person runs it: the tests' switch to WebKit's simpler compositing is left out.
const asShipped = { WEBKIT_DISABLE_COMPOSITING_MODE: null };
const small = mkdtempSync(join(tmpdir(), 'casewire-bench-'));
const smallDriver = await Driver.start(appEnv(small, asShipped), small);
// The big queue was encrypted by scripts/desktop-bench with its key in a file.
const bigKeys = process.env.DESKTOP_BENCH_KEY_FILE ? { CASEWIRE_KEY_FILE: process.env.DESKTOP_BENCH_KEY_FILE } : {};
const bigDriver = await Driver.start(appEnv(QUEUE_DIR, { ...asShipped, ...bigKeys, CASEWIRE_QUEUE_QUOTA_BYTES: String(8 * 1024 ** 3) }), small);
try {
  // Set up the small data folder: a superadmin, and a few events queued (no Kafka configured).
  let browser = await smallDriver.launch();
  await firstRun(browser, 'chief', PASSWORD);
  await close(browser);

  const starts = [];
  for (let i = 0; i < LAUNCHES; i++) {
    const run = await coldStart(smallDriver);
    starts.push(run);
    if (i < LAUNCHES - 1) await close(run.browser);
    else browser = run.browser;
  }

  // Memory, idle after sign-in on the cases screen.
  await signIn(browser, 'chief', PASSWORD);
  await new Promise((r) => setTimeout(r, 10_000));
  const { family } = appProcesses();
  const memory = memoryOf(family);

  // The queue screen with a handful of events (the reference), then in an app on the big queue
  // (one app at a time: a second would hand over to the first).
  const pages = { big: [], small: [] };
  for (let i = 0; i < NAVIGATIONS; i++) pages.small.push(await queueFirstPage(browser));
  await close(browser);
  const big = await bigDriver.launch();
  await firstRun(big, 'chief', PASSWORD);
  for (let i = 0; i < NAVIGATIONS; i++) pages.big.push(await queueFirstPage(big));
  const bigShown = await (await big.$('[data-testid=queue-stats]')).getText();
  await close(big);

  const fromProcess = starts.map((s) => s.fromProcess);
  const fromRequest = starts.map((s) => s.fromRequest);
  console.log(`| figure | runs (ms) | median | target |`);
  console.log(`|---|---|---|---|`);
  console.log(`| cold start, process start → sign-in painted | ${fmt(fromProcess)} | **${median(fromProcess).toFixed(0)} ms** | ≤ 1000 ms |`);
  console.log(`| the same from the WebDriver launch request (upper bound) | ${fmt(fromRequest)} | ${median(fromRequest).toFixed(0)} ms | |`);
  console.log(`| queue first page, ${process.env.DESKTOP_BENCH_EVENTS ?? '1000000'} events queued | ${fmt(pages.big)} | **${median(pages.big).toFixed(0)} ms** | ≤ 200 ms |`);
  console.log(`| queue first page, a handful queued (reference) | ${fmt(pages.small)} | ${median(pages.small).toFixed(0)} ms | |`);
  console.log(`| memory idle after sign-in, ${family.length} processes | RSS ${memory.rss.toFixed(0)} MiB | **PSS ${memory.pss.toFixed(0)} MiB** | ≤ 200 MB |`);
  for (const p of memory.each) console.log(`  ${p.name} (${p.pid}): RSS ${p.rss.toFixed(0)} MiB, PSS ${p.pss.toFixed(0)} MiB, anonymous ${p.anonymous.toFixed(0)} MiB`);
  console.log(`queue screen of the big app read: ${bigShown.replace(/\s+/g, ' ').slice(0, 200)}`);
  const summary = {
    cold_start_ms: Math.round(median(fromProcess)),
    cold_start_from_request_ms: Math.round(median(fromRequest)),
    queue_first_page_ms: Math.round(median(pages.big)),
    queue_first_page_reference_ms: Math.round(median(pages.small)),
    queue_ratio: Math.round((median(pages.big) / median(pages.small)) * 100) / 100,
    rss_mib: Math.round(memory.rss),
    anonymous_mib: Math.round(memory.anonymous),
    pss_mib: Math.round(memory.pss),
    processes: family.length,
  };
  console.log(JSON.stringify(summary));
  writeFileSync(join(small, 'bench.json'), JSON.stringify(summary));
} finally {
  smallDriver.stop();
  bigDriver.stop();
  killApps();
}
