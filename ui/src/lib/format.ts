// Dates, relative times, numbers and sizes, all through Intl. Each formatter is created once.

export const LOCALE = 'en';

const numberFormat = new Intl.NumberFormat(LOCALE);
const decimalFormat = new Intl.NumberFormat(LOCALE, { maximumFractionDigits: 2, minimumFractionDigits: 2 });
const rateFormat = new Intl.NumberFormat(LOCALE, { maximumFractionDigits: 1 });
const percentFormat = new Intl.NumberFormat(LOCALE, { style: 'percent', maximumFractionDigits: 1 });
const dateTimeFormat = new Intl.DateTimeFormat(LOCALE, { dateStyle: 'medium', timeStyle: 'medium' });
const timeFormat = new Intl.DateTimeFormat(LOCALE, { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
const relativeFormat = new Intl.RelativeTimeFormat(LOCALE, { numeric: 'auto' });
const pluralRules = new Intl.PluralRules(LOCALE);

export type Instant = string | number | Date;

function toMs(value: Instant): number {
  if (value instanceof Date) return value.getTime();
  if (typeof value === 'number') return value;
  return Date.parse(value);
}

export function formatNumber(n: number): string {
  return numberFormat.format(n);
}

export function formatDecimal(n: number): string {
  return decimalFormat.format(n);
}

export function formatRate(n: number): string {
  return rateFormat.format(n);
}

export function formatPercent(fraction: number): string {
  return percentFormat.format(fraction);
}

const BYTE_UNITS = ['byte', 'kilobyte', 'megabyte', 'gigabyte', 'terabyte'] as const;
const byteFormats = BYTE_UNITS.map(
  (unit) => new Intl.NumberFormat(LOCALE, { style: 'unit', unit, unitDisplay: unit === 'byte' ? 'long' : 'short', maximumFractionDigits: 1 }),
);

/** Bytes in binary steps (1 KB = 1024 bytes), e.g. "1.5 MB". */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let i = 0;
  while (Math.abs(value) >= 1024 && i < BYTE_UNITS.length - 1) {
    value /= 1024;
    i += 1;
  }
  return (byteFormats[i] ?? byteFormats[0]!).format(value);
}

export function formatDateTime(value: Instant): string {
  const ms = toMs(value);
  return Number.isFinite(ms) ? dateTimeFormat.format(ms) : '';
}

const clockFormat = new Intl.DateTimeFormat(LOCALE, { hour: '2-digit', minute: '2-digit', hour12: false });

/** Hours and minutes, for chart axes. */
export function formatClock(value: Instant): string {
  const ms = toMs(value);
  return Number.isFinite(ms) ? clockFormat.format(ms) : '';
}

export function formatTime(value: Instant): string {
  const ms = toMs(value);
  return Number.isFinite(ms) ? timeFormat.format(ms) : '';
}

const STEPS: [Intl.RelativeTimeFormatUnit, number][] = [
  ['second', 60],
  ['minute', 60],
  ['hour', 24],
  ['day', 7],
  ['week', 4.35],
  ['month', 12],
  ['year', Number.POSITIVE_INFINITY],
];

/** "5 minutes ago", "in 30 seconds", "now". `now` is injectable for tests and live labels. */
export function formatRelative(value: Instant, now: number = Date.now()): string {
  const ms = toMs(value);
  if (!Number.isFinite(ms)) return '';
  let delta = (ms - now) / 1000;
  if (Math.abs(delta) < 1) return relativeFormat.format(0, 'second');
  for (const [unit, size] of STEPS) {
    if (Math.abs(delta) < size) return relativeFormat.format(Math.round(delta), unit);
    delta /= size;
  }
  return relativeFormat.format(Math.round(delta), 'year');
}

/** Like formatRelative, for things that already happened: a time slightly ahead of this
 * machine's clock (the server's clock, or a coarse "now") reads "now", never "in 2 seconds". */
export function formatAgo(value: Instant, now: number = Date.now()): string {
  const ms = toMs(value);
  if (!Number.isFinite(ms)) return '';
  return formatRelative(Math.min(ms, now), now);
}

const durationUnits: [Intl.NumberFormatOptions['unit'], number][] = [
  ['second', 60],
  ['minute', 60],
  ['hour', 24],
  ['day', Number.POSITIVE_INFINITY],
];
const durationFormats = new Map(
  durationUnits.map(([unit]) => [unit, new Intl.NumberFormat(LOCALE, { style: 'unit', unit: unit!, unitDisplay: 'long', maximumFractionDigits: 0 })]),
);

/** A length of time, e.g. "42 seconds", "3 minutes", "2 hours". */
export function formatDuration(ms: number): string {
  let value = Math.max(0, ms) / 1000;
  for (const [unit, size] of durationUnits) {
    if (value < size) return durationFormats.get(unit)!.format(Math.floor(value));
    value /= size;
  }
  return durationFormats.get('day')!.format(Math.floor(value));
}

/** Chooses a whole sentence by plural category; never builds a sentence from parts. */
export function plural<T>(n: number, forms: { one: T; other: T }): T {
  return pluralRules.select(n) === 'one' ? forms.one : forms.other;
}

/** An amount in wei (a decimal string) in whole coins (10^18 wei), to at most 4 decimals; a
 * balance too small for that is not shown as nothing. */
export function formatWei(wei: string): string {
  let value: bigint;
  try {
    value = BigInt(wei);
  } catch {
    return wei;
  }
  const unit = 10n ** 18n;
  const whole = value / unit;
  const fraction = ((value % unit) * 10_000n) / unit;
  if (value > 0n && whole === 0n && fraction === 0n) return '< 0.0001';
  const decimals = fraction === 0n ? '' : `.${fraction.toString().padStart(4, '0').replace(/0+$/, '')}`;
  return `${numberFormat.format(whole)}${decimals}`;
}
