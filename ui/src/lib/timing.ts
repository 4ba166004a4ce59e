/**
 * User-timing marks for the benchmarks (BENCHMARKS.md, "Desktop and UI"): they read the marks
 * through WebDriver instead of guessing from outside when a screen was on the glass.
 */

/** The first screen a person can act on (first run or sign-in), drawn after the backend answered. */
export const FIRST_SCREEN = 'casewire:first-screen';

/**
 * Marks `name` once, after the next paint: a frame callback runs just before the frame is drawn,
 * and a task queued from it runs after.
 */
export function markPainted(name: string): void {
  if (typeof performance === 'undefined' || performance.getEntriesByName(name, 'mark').length > 0) return;
  requestAnimationFrame(() =>
    setTimeout(() => {
      if (performance.getEntriesByName(name, 'mark').length === 0) performance.mark(name);
    }),
  );
}
