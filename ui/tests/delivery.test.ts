import { describe, expect, it } from 'vitest';
import { describeDelivery } from '../src/lib/delivery';
import { shortReason, syncLabel } from '../src/lib/sync-label';
import type { Delivery, SyncStatus } from '../src/lib/api/types';

const NOW = Date.parse('2026-12-01T12:00:00Z');
const base: Delivery = { state: 'waiting', attempts: 0, lastError: null, nextAttemptAt: null, deliveredAt: null, reason: null };

describe('delivery-state labels', () => {
  it('waiting: on this laptop, with attempts, next try and the error', () => {
    const d = describeDelivery({ ...base, attempts: 2, nextAttemptAt: '2026-12-01T12:00:30Z', lastError: 'broker down' }, NOW);
    expect(d.label).toBe('Waiting on this laptop');
    expect(d.details).toEqual(['2 failed attempts', 'Next attempt in 30 seconds', 'Last error: broker down']);
    expect(d.tone).toBe('warn');
    expect(describeDelivery(base, NOW).details).toEqual([]);
    const overdue = describeDelivery({ ...base, nextAttemptAt: '2026-12-01T11:59:00Z' }, NOW);
    expect(overdue.details).toEqual(['Due now; sent as soon as a broker answers']);
    expect(overdue.tone).toBe('neutral');
  });

  it('sending', () => {
    const d = describeDelivery({ ...base, state: 'sending' }, NOW);
    expect(d.label).toBe('Being sent');
    expect(d.tone).toBe('progress');
  });

  it('delivered: says when', () => {
    const d = describeDelivery({ ...base, state: 'delivered', deliveredAt: '2026-12-01T11:55:00Z' }, NOW);
    expect(d.label).toBe('Delivered');
    expect(d.details).toEqual(['Delivered 5 minutes ago']);
    expect(d.tone).toBe('ok');
  });

  it('dead-lettered: says why, as an alarm', () => {
    const d = describeDelivery({ ...base, state: 'dead_lettered', attempts: 10, reason: 'max retries exceeded' }, NOW);
    expect(d.label).toBe('Dead-lettered');
    expect(d.details).toEqual(['Dead-lettered: max retries exceeded', '10 failed attempts']);
    expect(d.tone).toBe('alarm');
  });

  it('cleared: never delivered', () => {
    const d = describeDelivery({ ...base, state: 'cleared' }, NOW);
    expect(d.label).toBe('Cleared, never delivered');
    expect(d.tone).toBe('warn');
  });

  it('a server without delivery states says so rather than guessing', () => {
    expect(describeDelivery(undefined, NOW).state).toBe('unknown');
    expect(describeDelivery(null, NOW).label).toBe('Delivery state not reported');
  });
});

describe('sync badge', () => {
  const status: SyncStatus = { state: 'synced', waiting: 0, inFlight: 0, deadLetters: 0, brokerConnected: true, lastDeliveryAt: '2026-12-01T11:59:00Z', lastError: null };
  it('reads each state', () => {
    expect(syncLabel(status, 'ok', NOW).text).toBe('Synced');
    expect(syncLabel(status, 'ok', NOW).detail).toBe('Last delivery 1 minute ago');
    expect(syncLabel(status, 'unreachable', NOW).state).toBe('unreachable');
    expect(syncLabel(status, 'starting', NOW).text).toBe('Casewire is starting…');
    expect(syncLabel(null, 'unsupported', NOW).text).toBe('Delivery state not reported');
    expect(syncLabel({ ...status, lastDeliveryAt: null }, 'ok', NOW).detail).toBe('Nothing delivered yet');
  });

  it('counts waiting once: it already includes the events in flight', () => {
    expect(syncLabel({ ...status, state: 'sending', waiting: 3, inFlight: 1 }, 'ok', NOW).text).toBe('Sending 3 events');
    expect(syncLabel({ ...status, state: 'sending', waiting: 1, inFlight: 1 }, 'ok', NOW).text).toBe('Sending 1 event');
  });

  it('says offline events are safe on this laptop, and when the last one went', () => {
    const label = syncLabel({ ...status, state: 'offline', waiting: 4, brokerConnected: false }, 'ok', NOW);
    expect(label.text).toBe('Offline · 4 waiting');
    expect(label.tone).toBe('warn');
    expect(label.detail).toMatch(/kept on this laptop/i);
    expect(label.title).toContain('4 events are kept safe on this laptop');
    expect(label.title).toContain('Last delivery 1 minute ago');
  });

  it('names the refusal the server reports, whatever the reason text says', () => {
    const err = syncLabel({ ...status, state: 'error', waiting: 3, lastError: 'Local: SSL error: something librdkafka said', refused: 'certificate' }, 'ok', NOW);
    expect(err.detail).toBe('TLS certificate problem');
    const auth = syncLabel({ ...status, state: 'error', waiting: 3, lastError: 'Broker: unusual words', refused: 'authentication' }, 'ok', NOW);
    expect(auth.detail).toBe('Kafka refused the sign-in (SASL)');
  });

  it('shortens an error reason for the badge and keeps it whole on hover', () => {
    const sasl = 'Message production error: Authentication (Local: Authentication failure): SASL authentication error: Authentication failed: Invalid username or password (after 312ms in state AUTH_REQ)';
    const err = syncLabel({ ...status, state: 'error', waiting: 2, lastError: sasl }, 'ok', NOW);
    expect(err.text).toBe('Delivery error · 2 waiting');
    expect(err.detail).toBe('Kafka refused the sign-in (SASL)');
    expect(err.title).toContain(sasl);
    expect(err.title).toMatch(/An admin must fix/);
    expect(err.tone).toBe('alarm');
    expect(shortReason('ssl://kafka:9093/bootstrap: SSL handshake failed: certificate verify failed')).toBe('TLS certificate problem');
    expect(shortReason('Broker: Topic authorization failed')).toBe('Not allowed to write to the topic');
    expect(shortReason('Broker: Unknown topic or partition')).toBe('The Kafka topic does not exist');
    expect(shortReason('Global error: short one')).toBe('short one');
    const long = shortReason('Message production error: something unusual happened with the broker connection pool and more words after');
    expect(long.length).toBeLessThanOrEqual(49);
    expect(long.endsWith('…')).toBe(true);
    expect(syncLabel({ ...status, state: 'error', waiting: 1, lastError: null }, 'ok', NOW).detail).toBe('Kafka refused the events');
  });

  it('makes clear that without Kafka events are safe here and what an admin does', () => {
    const label = syncLabel({ ...status, state: 'not_configured', waiting: 5, brokerConnected: false }, 'ok', NOW);
    expect(label.text).toBe('Kafka not configured · 5 waiting');
    expect(label.detail).toMatch(/safe on this laptop/i);
    expect(label.title).toContain('An admin sets KAFKA_BROKERS in Settings');
    expect(syncLabel({ ...status, state: 'not_configured', waiting: 0 }, 'ok', NOW).text).toBe('Kafka not configured');
  });
});

describe('waiting without Kafka', () => {
  it('says when it will be sent instead of a due time that means nothing', () => {
    const waiting = { state: 'waiting', attempts: 0, lastError: null, nextAttemptAt: '2026-12-01T11:59:00Z', deliveredAt: null, reason: null } as const;
    expect(describeDelivery(waiting, NOW, true).details).toEqual(['Sent once an admin configures Kafka']);
    expect(describeDelivery(waiting, NOW).details[0]).toMatch(/Due now/);
  });
});

describe('next attempt', () => {
  it('within a second reads as due now, not "Next attempt now"', () => {
    const soon = describeDelivery({ ...base, nextAttemptAt: new Date(NOW + 400).toISOString() }, NOW);
    expect(soon.details).toEqual(['Due now; sent as soon as a broker answers']);
  });
});
