// A shared "now" that ticks, so relative times ("2 minutes ago") stay true without re-fetching.
class Clock {
  now = $state(Date.now());
  constructor() {
    if (typeof window !== 'undefined') setInterval(() => (this.now = Date.now()), 5000);
  }
}
export const clock = new Clock();
