import { describe, expect, it } from 'vitest';
import { parseHash } from '../src/lib/stores/router.svelte';
import { addSample, publishedTotal } from '../src/lib/stores/queue-live.svelte';

describe('hash routes', () => {
  it('parses screens and ids', () => {
    expect(parseHash('')).toEqual({ screen: 'cases' });
    expect(parseHash('#/cases/CASE-2026-001')).toEqual({ screen: 'case', id: 'CASE-2026-001' });
    expect(parseHash('#/evidence?wallet=0xabc')).toEqual({ screen: 'evidence', caseId: null, wallet: '0xabc' });
    expect(parseHash('#/evidence/0123abcd')).toEqual({ screen: 'evidenceItem', id: '0123abcd' });
    expect(parseHash('#/queue')).toEqual({ screen: 'queue' });
    expect(parseHash('#/nope')).toEqual({ screen: 'notFound' });
  });
});

describe('queue chart samples', () => {
  it('reads the published counter and derives a rate', () => {
    const text = '# HELP casewire_events_published_total x\n# TYPE casewire_events_published_total counter\ncasewire_events_published_total 42\n';
    expect(publishedTotal(text)).toBe(42);
    expect(publishedTotal('nothing')).toBeNull();
    let s = addSample([], 10_000, 5, 40, null);
    expect(s[0]!.rate).toBeNull();
    s = addSample(s, 12_000, 3, 46, { at: 10_000, published: 40 });
    expect(s[1]!.rate).toBe(3);
  });

  it('keeps only the last 15 minutes', () => {
    let s = addSample([], 0, 1, 0, null);
    s = addSample(s, 16 * 60_000, 1, 0, { at: 0, published: 0 });
    expect(s).toHaveLength(1);
  });
});
