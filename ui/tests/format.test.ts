import { describe, expect, it } from 'vitest';
import { formatAgo, formatBytes, formatDuration, formatNumber, formatRelative, formatWei, plural } from '../src/lib/format';
import { t } from '../src/lib/i18n/en';

const NOW = Date.parse('2026-12-01T12:00:00Z');

describe('relative times', () => {
  it('says how long ago, in words', () => {
    expect(formatRelative(NOW - 5 * 60_000, NOW)).toBe('5 minutes ago');
    expect(formatRelative(NOW - 1 * 60_000, NOW)).toBe('1 minute ago');
    expect(formatRelative(NOW - 3 * 3600_000, NOW)).toBe('3 hours ago');
    expect(formatRelative(NOW - 26 * 3600_000, NOW)).toBe('yesterday');
    expect(formatRelative(NOW + 30_000, NOW)).toBe('in 30 seconds');
    expect(formatRelative(NOW, NOW)).toBe('now');
  });

  it('never says a past event is in the future', () => {
    expect(formatAgo(NOW + 2_000, NOW)).toBe('now');
    expect(formatAgo(NOW - 120_000, NOW)).toBe('2 minutes ago');
  });

  it('accepts RFC 3339 strings and Unix milliseconds alike', () => {
    expect(formatRelative('2026-12-01T11:58:00.000Z', NOW)).toBe('2 minutes ago');
    expect(formatRelative(NOW - 120_000, NOW)).toBe('2 minutes ago');
    expect(formatRelative('not a date', NOW)).toBe('');
  });
});

describe('numbers and sizes', () => {
  it('groups digits', () => {
    expect(formatNumber(1234567)).toBe('1,234,567');
  });

  it('formats bytes in binary steps', () => {
    expect(formatBytes(512)).toBe('512 bytes');
    expect(formatBytes(1)).toBe('1 byte');
    expect(formatBytes(1536)).toBe('1.5 kB');
    expect(formatBytes(1024 ** 3)).toBe('1 GB');
  });

  it('formats durations', () => {
    expect(formatDuration(42_000)).toBe('42 seconds');
    expect(formatDuration(3 * 60_000 + 10_000)).toBe('3 minutes');
    expect(formatDuration(2 * 3600_000)).toBe('2 hours');
  });

  it('chooses whole sentences by plural', () => {
    expect(plural(1, { one: 'a', other: 'b' })).toBe('a');
    expect(plural(2, { one: 'a', other: 'b' })).toBe('b');
    expect(t.queue.cleared(1)).toBe('1 event dropped.');
    expect(t.queue.cleared(1200)).toBe('1,200 events dropped.');
    expect(t.sync.sending(3)).toBe('Sending 3 events');
  });
});

describe('formatWei', () => {
  it('shows wei as whole coins with at most four decimals, trailing zeros dropped', () => {
    expect(formatWei('0')).toBe('0');
    expect(formatWei('10000000000000000000000')).toBe('10,000');
    expect(formatWei('9999999978543000000000')).toBe('9,999.9999');
    expect(formatWei('1500000000000000000')).toBe('1.5');
    expect(formatWei('20000000000000')).toBe('< 0.0001');
    expect(formatWei('not a number')).toBe('not a number');
  });
});
