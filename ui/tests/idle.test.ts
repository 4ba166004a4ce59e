import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createIdleTimer, type IdleTimer } from '../src/lib/idle';

describe('idle lock timer', () => {
  let target: EventTarget;
  let timer: IdleTimer | null;
  const onIdle = vi.fn();
  const minute = 60_000;

  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(new Date('2026-12-01T12:00:00Z'));
    target = new EventTarget();
    onIdle.mockReset();
    timer = null;
  });
  afterEach(() => {
    timer?.stop();
    vi.useRealTimers();
  });

  const start = (minutes: number) => (timer = createIdleTimer({ minutes, onIdle, target }));

  it('locks once after the given minutes without input', () => {
    start(15);
    vi.advanceTimersByTime(15 * minute - 1);
    expect(onIdle).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(onIdle).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(60 * minute);
    expect(onIdle).toHaveBeenCalledTimes(1);
  });

  it.each(['keydown', 'pointerdown', 'pointermove', 'wheel', 'touchstart'])('%s counts as input and restarts the wait', (name) => {
    start(10);
    vi.advanceTimersByTime(9 * minute);
    target.dispatchEvent(new Event(name));
    vi.advanceTimersByTime(9 * minute);
    expect(onIdle).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1 * minute);
    expect(onIdle).toHaveBeenCalledTimes(1);
  });

  it('ignores events that are not input', () => {
    start(1);
    vi.advanceTimersByTime(30_000);
    target.dispatchEvent(new Event('scroll'));
    vi.advanceTimersByTime(30_000);
    expect(onIdle).toHaveBeenCalledTimes(1);
  });

  it('keeps one timer however much input arrives', () => {
    start(5);
    for (let i = 0; i < 500; i += 1) target.dispatchEvent(new Event('pointermove'));
    expect(vi.getTimerCount()).toBe(1);
  });

  it('locks at once when the page comes back after sleeping past the limit', () => {
    start(15);
    // The machine slept: the clock jumped, no timer ran.
    vi.setSystemTime(Date.now() + 20 * minute);
    target.dispatchEvent(new Event('visibilitychange'));
    expect(onIdle).toHaveBeenCalledTimes(1);
  });

  it('never locks with 0 minutes, and stops listening when stopped', () => {
    start(0);
    vi.advanceTimersByTime(24 * 60 * minute);
    expect(onIdle).not.toHaveBeenCalled();
    timer!.stop();
    const other = start(1);
    other.stop();
    vi.advanceTimersByTime(5 * minute);
    expect(onIdle).not.toHaveBeenCalled();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('takes a new limit counted from the last input', () => {
    const t = start(30);
    vi.advanceTimersByTime(4 * minute);
    t.setMinutes(5);
    vi.advanceTimersByTime(1 * minute - 1);
    expect(onIdle).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(onIdle).toHaveBeenCalledTimes(1);
  });

  it('a limit already passed at the change locks at once', () => {
    const t = start(30);
    vi.advanceTimersByTime(10 * minute);
    t.setMinutes(5);
    vi.advanceTimersByTime(0);
    expect(onIdle).toHaveBeenCalledTimes(1);
  });
});
