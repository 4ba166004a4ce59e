import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { markPainted } from '../src/lib/timing';

describe('paint marks for the benchmarks', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'requestAnimationFrame'] });
    performance.clearMarks();
  });
  afterEach(() => vi.useRealTimers());

  const marks = (name: string) => performance.getEntriesByName(name, 'mark');

  it('marks only after the next frame has been drawn', () => {
    markPainted('screen');
    expect(marks('screen')).toHaveLength(0);
    vi.advanceTimersToNextFrame();
    expect(marks('screen')).toHaveLength(0);
    vi.runOnlyPendingTimers();
    expect(marks('screen')).toHaveLength(1);
  });

  it('keeps the first mark when the screen is drawn again', () => {
    markPainted('screen');
    markPainted('screen');
    vi.advanceTimersToNextFrame();
    vi.runOnlyPendingTimers();
    const first = marks('screen')[0]?.startTime;
    expect(first).toBeTypeOf('number');
    markPainted('screen');
    vi.advanceTimersToNextFrame();
    vi.runOnlyPendingTimers();
    expect(marks('screen')).toHaveLength(1);
    expect(marks('screen')[0]?.startTime).toBe(first);
  });
});
