// A poll loop that never overlaps: the next run is scheduled only once the previous one has
// settled, and the interval is longer while the document is hidden.

export interface PollerOptions {
  /** The work; a rejection is passed to onError and the loop carries on. */
  task: (signal: AbortSignal) => Promise<unknown>;
  /** ms between the end of one run and the start of the next while visible. */
  interval: number;
  /** ms while the document is hidden. */
  hiddenInterval: number;
  isHidden?: () => boolean;
  onError?: (error: unknown) => void;
  /** Injected in tests. */
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (handle: unknown) => void;
}

export interface Poller {
  start(): void;
  stop(): void;
  /** Run as soon as possible: now if idle, right after the current run if one is in flight. */
  poke(): void;
  readonly running: boolean;
}

export function createPoller(options: PollerOptions): Poller {
  const isHidden = options.isHidden ?? (() => typeof document !== 'undefined' && document.hidden);
  const setTimer = options.setTimer ?? ((fn, ms) => setTimeout(fn, ms));
  const clearTimer = options.clearTimer ?? ((h) => clearTimeout(h as ReturnType<typeof setTimeout>));
  let active = false;
  let inFlight = false;
  let pokeAfter = false;
  let timer: unknown = null;
  let controller: AbortController | null = null;
  const onVisibility = () => {
    if (!isHidden()) poller.poke();
  };

  function schedule(ms: number) {
    if (timer !== null) clearTimer(timer);
    timer = setTimer(() => {
      timer = null;
      void run();
    }, ms);
  }

  async function run() {
    if (!active || inFlight) return;
    inFlight = true;
    controller = new AbortController();
    try {
      await options.task(controller.signal);
    } catch (error) {
      if (active) options.onError?.(error);
    } finally {
      inFlight = false;
      controller = null;
    }
    if (!active) return;
    if (pokeAfter) {
      pokeAfter = false;
      schedule(0);
    } else {
      schedule(isHidden() ? options.hiddenInterval : options.interval);
    }
  }

  const poller: Poller = {
    start() {
      if (active) return;
      active = true;
      if (typeof document !== 'undefined') document.addEventListener('visibilitychange', onVisibility);
      void run();
    },
    stop() {
      active = false;
      if (typeof document !== 'undefined') document.removeEventListener('visibilitychange', onVisibility);
      pokeAfter = false;
      if (timer !== null) clearTimer(timer);
      timer = null;
      controller?.abort();
    },
    poke() {
      if (!active) return;
      if (inFlight) {
        pokeAfter = true;
      } else {
        schedule(0);
      }
    },
    get running() {
      return inFlight;
    },
  };
  return poller;
}
