// uPlot, the queue screen's chart, loaded apart from the app: its module formats numbers for
// navigator.language when it loads, which throws where the webview's locale is a bare "C", and
// then only the chart must be missing, never the whole app. An admin's session loads it ahead,
// while idle, so the first visit to the queue screen does not wait for it.
import type uPlot from 'uplot';

let loading: Promise<typeof uPlot> | null = null;

/** The uPlot constructor, loaded once; a failed load is tried again at the next call. */
export function loadPlot(): Promise<typeof uPlot> {
  if (loading === null) {
    loading = import('uplot').then((module) => module.default);
    loading.catch(() => (loading = null));
  }
  return loading;
}

/** Loads uPlot after `ms` unless cancelled (the returned function cancels). */
export function preloadPlot(ms: number): () => void {
  const timer = setTimeout(() => void loadPlot().catch(() => {}), ms);
  return () => clearTimeout(timer);
}
