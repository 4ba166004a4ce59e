// Locks the session after a while without input. Input only records the time (cheap on every
// pointer move); one timer checks when the limit can first be reached and re-arms itself. A
// laptop that slept past the limit locks as soon as it wakes (the late timer, or the page
// becoming visible again).

export const INPUT_EVENTS = ['keydown', 'pointerdown', 'pointermove', 'wheel', 'touchstart'] as const;

export interface IdleTimerOptions {
  /** Minutes without input before `onIdle`; 0 or less never locks. */
  minutes: number;
  onIdle: () => void;
  /** Where input is watched (window in the app). */
  target?: EventTarget;
  now?: () => number;
}

export interface IdleTimer {
  /** Input happened now. */
  touch(): void;
  /** A new limit (preferences changed); counted from the last input. */
  setMinutes(minutes: number): void;
  stop(): void;
}

export function createIdleTimer({ minutes, onIdle, target = globalThis, now = Date.now }: IdleTimerOptions): IdleTimer {
  let limitMs = minutes * 60_000;
  let last = now();
  let timer: ReturnType<typeof setTimeout> | null = null;
  let stopped = false;

  const clear = () => {
    if (timer !== null) clearTimeout(timer);
    timer = null;
  };

  const check = () => {
    timer = null;
    if (stopped || limitMs <= 0) return;
    const left = last + limitMs - now();
    if (left <= 0) {
      stopped = true;
      detach();
      onIdle();
    } else {
      timer = setTimeout(check, left);
    }
  };

  const arm = () => {
    clear();
    if (!stopped && limitMs > 0) timer = setTimeout(check, Math.max(0, last + limitMs - now()));
  };

  const onInput = () => {
    last = now();
  };
  const onVisible = () => {
    if (typeof document === 'undefined' || !document.hidden) check();
  };
  const options: AddEventListenerOptions = { capture: true, passive: true };
  for (const name of INPUT_EVENTS) target.addEventListener(name, onInput, options);
  target.addEventListener('visibilitychange', onVisible);
  function detach() {
    for (const name of INPUT_EVENTS) target.removeEventListener(name, onInput, options);
    target.removeEventListener('visibilitychange', onVisible);
  }

  arm();
  return {
    touch: onInput,
    setMinutes(next: number) {
      limitMs = next * 60_000;
      arm();
    },
    stop() {
      stopped = true;
      clear();
      detach();
    },
  };
}
