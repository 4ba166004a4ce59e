// How an event's delivery state reads on a timeline: a label, the detail that matters, a tone.
import { deliveryStates, t } from './i18n/en';
import type { Delivery } from './api/types';

export type Tone = 'neutral' | 'progress' | 'ok' | 'alarm' | 'warn';

export interface DeliveryText {
  state: Delivery['state'] | 'unknown';
  label: string;
  hint: string;
  details: string[];
  tone: Tone;
}

/** `noKafka`: no broker is configured, so a waiting event has no next attempt to speak of. */
export function describeDelivery(delivery: Delivery | null | undefined, now: number = Date.now(), noKafka = false): DeliveryText {
  if (!delivery) return { state: 'unknown', label: t.delivery.unknown, hint: '', details: [], tone: 'neutral' };
  const base = deliveryStates[delivery.state];
  const details: string[] = [];
  switch (delivery.state) {
    case 'waiting':
      if (delivery.attempts > 0) details.push(t.delivery.waitingAttempts(delivery.attempts));
      if (noKafka) details.push(t.delivery.waitingForKafka);
      else if (delivery.nextAttemptAt) details.push(t.delivery.nextAttempt(delivery.nextAttemptAt, now));
      if (delivery.lastError) details.push(t.delivery.lastError(delivery.lastError));
      return { state: 'waiting', label: base.label, hint: base.hint, details, tone: delivery.lastError ? 'warn' : 'neutral' };
    case 'sending':
      return { state: 'sending', label: base.label, hint: base.hint, details, tone: 'progress' };
    case 'delivered':
      if (delivery.deliveredAt) details.push(t.delivery.deliveredAt(delivery.deliveredAt, now));
      return { state: 'delivered', label: base.label, hint: base.hint, details, tone: 'ok' };
    case 'dead_lettered':
      details.push(t.delivery.deadReason(delivery.reason ?? delivery.lastError ?? ''));
      if (delivery.attempts > 0) details.push(t.delivery.waitingAttempts(delivery.attempts));
      return { state: 'dead_lettered', label: base.label, hint: base.hint, details, tone: 'alarm' };
    case 'cleared':
      return { state: 'cleared', label: base.label, hint: base.hint, details, tone: 'warn' };
  }
}
