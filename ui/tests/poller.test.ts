import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createPoller } from '../src/lib/poller';

function deferred() {
  let resolve!: () => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('createPoller', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('never starts a run while the previous one is still in flight', async () => {
    let concurrent = 0;
    let maxConcurrent = 0;
    let runs = 0;
    const pending: ReturnType<typeof deferred>[] = [];
    const poller = createPoller({
      interval: 100,
      hiddenInterval: 1000,
      isHidden: () => false,
      task: async () => {
        runs += 1;
        concurrent += 1;
        maxConcurrent = Math.max(maxConcurrent, concurrent);
        const d = deferred();
        pending.push(d);
        await d.promise;
        concurrent -= 1;
      },
    });
    poller.start();
    expect(runs).toBe(1);
    // A slow answer: ten intervals pass and pokes arrive, yet no second run starts.
    await vi.advanceTimersByTimeAsync(1000);
    poller.poke();
    poller.poke();
    await vi.advanceTimersByTimeAsync(1000);
    expect(runs).toBe(1);
    pending[0]!.resolve();
    // The poke made while in flight runs right after, once.
    await vi.advanceTimersByTimeAsync(0);
    expect(runs).toBe(2);
    pending[1]!.resolve();
    await vi.advanceTimersByTimeAsync(99);
    expect(runs).toBe(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(runs).toBe(3);
    expect(maxConcurrent).toBe(1);
    poller.stop();
  });

  it('waits the interval after the answer, not after the start', async () => {
    const starts: number[] = [];
    const poller = createPoller({
      interval: 100,
      hiddenInterval: 1000,
      isHidden: () => false,
      task: async () => {
        starts.push(Date.now());
        await new Promise((r) => setTimeout(r, 50));
      },
    });
    const t0 = Date.now();
    poller.start();
    await vi.advanceTimersByTimeAsync(400);
    poller.stop();
    expect(starts.map((s) => s - t0)).toEqual([0, 150, 300]);
  });

  it('polls more slowly while the document is hidden', async () => {
    let hidden = false;
    let runs = 0;
    const poller = createPoller({
      interval: 100,
      hiddenInterval: 1000,
      isHidden: () => hidden,
      task: async () => {
        runs += 1;
      },
    });
    poller.start();
    await vi.advanceTimersByTimeAsync(0);
    await vi.advanceTimersByTimeAsync(500);
    const visibleRuns = runs;
    expect(visibleRuns).toBe(6);
    hidden = true;
    await vi.advanceTimersByTimeAsync(100); // the run scheduled while visible
    const before = runs;
    await vi.advanceTimersByTimeAsync(900);
    expect(runs).toBe(before);
    await vi.advanceTimersByTimeAsync(100);
    expect(runs).toBe(before + 1);
    poller.stop();
  });

  it('keeps polling after a failure and reports it', async () => {
    const errors: unknown[] = [];
    let runs = 0;
    const poller = createPoller({
      interval: 100,
      hiddenInterval: 1000,
      isHidden: () => false,
      onError: (e) => errors.push(e),
      task: async () => {
        runs += 1;
        if (runs === 1) throw new Error('boom');
      },
    });
    poller.start();
    await vi.advanceTimersByTimeAsync(100);
    expect(errors).toHaveLength(1);
    expect(runs).toBe(2);
    poller.stop();
  });

  it('stops: no run after stop, and the in-flight request is aborted', async () => {
    let runs = 0;
    let signal: AbortSignal | null = null;
    const d = deferred();
    const poller = createPoller({
      interval: 100,
      hiddenInterval: 1000,
      isHidden: () => false,
      task: async (s) => {
        runs += 1;
        signal = s;
        await d.promise;
      },
    });
    poller.start();
    poller.stop();
    expect(signal!.aborted).toBe(true);
    d.resolve();
    await vi.advanceTimersByTimeAsync(1000);
    expect(runs).toBe(1);
  });
});
