// The sync badge's words: state, a short detail, the full story on hover, and what a screen
// reader announces. `waiting` already counts the events being sent (`inFlight` is a part of it).
import type { SyncStatus } from './api/types';
import { t } from './i18n/en';
import type { Tone } from './delivery';

/** Whether the server itself answers: yes, not at all, starting or quitting (desktop), or too old to have `/api/sync`. */
export type Link = 'ok' | 'unreachable' | 'starting' | 'unsupported';

export interface SyncLabel {
  state: SyncStatus['state'] | 'unknown' | 'unreachable' | 'starting';
  text: string;
  /** One short line under the state. */
  detail: string;
  /** The whole explanation (hover, and the queue screen): full reason, what happens, who acts. */
  title: string;
  /** Announced on change only: the state, not the ticking time. */
  announce: string;
  tone: Tone;
}

const SHORT_REASONS: [RegExp, string][] = [
  [/sasl|authenticat|credentials|password/i, t.sync.reasons.authentication],
  [/ssl|tls|certificate|handshake/i, t.sync.reasons.tls],
  [/authori[sz]|acl|not allowed|permission/i, t.sync.reasons.authorisation],
  [/unknown topic|topic.*(not exist|unknown)/i, t.sync.reasons.topic],
  [/message.*too large|record.*too large|size too large/i, t.sync.reasons.tooLarge],
];

const MAX_REASON = 48;

/** A relay error, long and technical (librdkafka's words), cut to what fits the badge. */
export function shortReason(reason: string): string {
  for (const [pattern, short] of SHORT_REASONS) if (pattern.test(reason)) return short;
  // Drop librdkafka's generic prefixes ("Message production error: …") and keep the first clause.
  const text = reason.replace(/^(message production error|global error|kafka error|error)\s*:\s*/i, '').trim();
  if (text.length <= MAX_REASON) return text;
  const cut = text.slice(0, MAX_REASON);
  const space = cut.lastIndexOf(' ');
  return `${(space > MAX_REASON / 2 ? cut.slice(0, space) : cut).replace(/[\s,:;(]+$/, '')}…`;
}

export function syncLabel(status: SyncStatus | null, link: Link, now: number): SyncLabel {
  if (link === 'unreachable') {
    const text = t.sync.unreachable;
    return { state: 'unreachable', text, detail: t.errorsShort.network, title: t.sync.unreachableTitle, announce: text, tone: 'alarm' };
  }
  if (link === 'starting') {
    const text = t.sync.starting;
    return { state: 'starting', text, detail: t.sync.startingDetail, title: t.sync.startingDetail, announce: text, tone: 'neutral' };
  }
  if (!status) {
    const text = link === 'unsupported' ? t.sync.unsupported : t.sync.unknown;
    return { state: 'unknown', text, detail: '', title: text, announce: '', tone: 'neutral' };
  }
  const refusedReasons: Record<string, string> = {
    authentication: t.sync.reasons.authentication,
    certificate: t.sync.reasons.tls,
    authorization: t.sync.reasons.authorisation,
  };
  const last = status.lastDeliveryAt ? t.sync.lastDelivery(status.lastDeliveryAt, now) : t.sync.neverDelivered;
  const waiting = status.waiting;
  switch (status.state) {
    case 'synced':
      return { state: 'synced', text: t.sync.synced, detail: last, title: t.sync.syncedTitle(last), announce: t.sync.synced, tone: 'ok' };
    case 'sending': {
      const text = t.sync.sending(waiting);
      return { state: 'sending', text, detail: last, title: t.sync.sendingTitle(waiting, last), announce: text, tone: 'progress' };
    }
    case 'offline': {
      const text = t.sync.offline(waiting);
      return { state: 'offline', text, detail: t.sync.offlineDetail, title: t.sync.offlineTitle(waiting, last), announce: text, tone: 'warn' };
    }
    case 'error': {
      const text = t.sync.error(waiting);
      // The server says outright when the cluster refuses this client; else the reason's text.
      const refused = status.refused ? refusedReasons[status.refused] : undefined;
      const detail = refused ?? (status.lastError ? shortReason(status.lastError) : t.sync.errorNoReason);
      const title = t.sync.errorTitle(status.lastError ?? t.sync.errorNoReason, waiting);
      return { state: 'error', text, detail, title, announce: t.sync.errorAnnounce(detail), tone: 'alarm' };
    }
    case 'not_configured': {
      const text = t.sync.notConfigured(waiting);
      return { state: 'not_configured', text, detail: t.sync.notConfiguredDetail, title: t.sync.notConfiguredTitle(waiting), announce: text, tone: 'neutral' };
    }
  }
}
