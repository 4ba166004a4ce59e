// Samples for the live queue chart: depth and delivery rate, the last 15 minutes, kept while the
// app runs so leaving the queue screen and coming back keeps the history.
import { rawFetch } from '../api/client';

export const WINDOW_MS = 15 * 60 * 1000;

export interface Sample {
  /** Unix seconds (uPlot's x scale). */
  t: number;
  depth: number;
  /** Events delivered per second since the previous sample; null for the first. */
  rate: number | null;
}

/** Reads `casewire_events_published_total` from the Prometheus text. */
export function publishedTotal(metrics: string): number | null {
  const m = /^casewire_events_published_total(?:\{[^}]*\})?\s+([0-9.eE+-]+)\s*$/m.exec(metrics);
  return m?.[1] !== undefined ? Number(m[1]) : null;
}

export function addSample(samples: Sample[], at: number, depth: number, published: number | null, last: { at: number; published: number | null } | null): Sample[] {
  let rate: number | null = null;
  if (last && published !== null && last.published !== null && at > last.at) {
    rate = Math.max(0, (published - last.published) / ((at - last.at) / 1000));
  }
  const next = [...samples, { t: at / 1000, depth, rate }];
  const cutoff = (at - WINDOW_MS) / 1000;
  return next.filter((s) => s.t >= cutoff);
}

class QueueLive {
  samples = $state<Sample[]>([]);
  private last: { at: number; published: number | null } | null = null;

  async record(depth: number, signal?: AbortSignal): Promise<void> {
    let published: number | null = null;
    try {
      const response = await rawFetch('/metrics', signal ? { signal } : {});
      published = publishedTotal(await response.text());
    } catch {
      published = null;
    }
    const at = Date.now();
    this.samples = addSample(this.samples, at, depth, published, this.last);
    this.last = { at, published };
  }
}

export const queueLive = new QueueLive();
