// The message catalogue: every string the UI shows. Sentences are whole; numbers, dates and
// times are formatted with Intl (../format.ts) and put into a sentence, never glued together.
import {
  formatBytes,
  formatDateTime,
  formatDuration,
  formatNumber,
  formatAgo,
  formatRelative,
  plural,
  type Instant,
} from '../format';
import type { ServerErrorCode } from '../api/types';

const n = formatNumber;

export const errorMessages = {
  invalid_request: {
    title: 'The server did not accept this input.',
    action: 'Correct the highlighted value and try again. Nothing was changed.',
  },
  conflict: {
    title: 'This conflicts with what is already recorded.',
    action: 'Reload the page to see the current state, then try again.',
  },
  bad_credentials: {
    title: 'The username or password is wrong.',
    action: 'Check both and try again. After five failed attempts from this computer it must wait before the next try, longer after each further failure.',
  },
  login_throttled: {
    title: 'Too many failed sign-ins from this computer.',
    action: 'Wait for the time below, then try again, or ask a superadmin to reset the password. Signing in from another computer is not affected.',
  },
  unauthenticated: {
    title: 'Your session has ended.',
    action: 'Sign in again; you will come back to this page.',
  },
  forbidden: {
    title: 'Your role does not allow this.',
    action: 'Ask an admin or superadmin to do it, or to change your role.',
  },
  too_large: {
    title: 'This is larger than the server accepts.',
    action: 'Use a smaller file or split it. Nothing was stored.',
  },
  not_found: {
    title: 'This no longer exists or never did.',
    action: 'Check the identifier, or go back to the list.',
  },
  gone: {
    title: 'This was deleted.',
    action: 'Its record and hash are kept, but the content cannot be used any more.',
  },
  request_timeout: {
    title: 'The server took too long and stopped this request.',
    action: 'It may or may not have been saved: check, then try again.',
  },
  queue_full: {
    title: 'The event queue on this laptop is full, so nothing was recorded.',
    action: 'Connect to headquarters so queued events can be delivered, or ask an admin to free space.',
  },
  internal: {
    title: 'The server failed while handling this.',
    action: 'Nothing was changed. Try again; if it keeps failing, tell your admin.',
  },
  unsupported_media_type: {
    title: 'The server could not read the request format.',
    action: 'This is a fault in Casewire. Reload the page and try again; report it if it persists.',
  },
  cross_origin: {
    title: 'The server refused a request from another site.',
    action: 'Open Casewire from its own address rather than through another page.',
  },
  bad_host: {
    title: 'The server does not answer to this address.',
    action: 'Open Casewire through localhost or 127.0.0.1.',
  },
  setup_done: {
    title: 'Casewire has already been set up.',
    action: 'Sign in with an existing account.',
  },
  setup_code_invalid: {
    title: 'The setup code is wrong.',
    action: 'Copy the code printed by the server when it started and try again.',
  },
  idempotency_key_reused: {
    title: 'This request repeated an earlier one with different content.',
    action: 'Reload the page and do it again.',
  },
  idempotency_in_progress: {
    title: 'The same request is still being handled.',
    action: 'Wait a moment and reload to see the result.',
  },
  idempotency_outcome_unknown: {
    title: 'An earlier attempt was interrupted; its outcome is unknown.',
    action: 'Reload to check whether it took effect before trying again.',
  },
  invalid_setting: {
    title: 'This value is not valid for this setting.',
    action: 'Correct it as the server explains below; nothing was changed.',
  },
  settings_unavailable: {
    title: 'Settings cannot be changed on this server.',
    action: 'Change them in the environment or the configuration file, then restart Casewire.',
  },
  local_files_unavailable: {
    title: 'Files by path can only be added in the desktop app.',
    action: 'Choose the file with the browser picker instead.',
  },
  unknown_file_handle: {
    title: 'Casewire no longer holds that file.',
    action: 'Files must be chosen or dropped in this window. Choose the file again, then retry.',
  },
  answer_too_large: {
    title: 'This is too large to show in the window.',
    action: 'Save it to a file instead (Download), or narrow the list with a filter.',
  },
  starting: {
    title: 'Casewire is starting or quitting.',
    action: 'Wait a moment, then try again. Nothing was changed.',
  },
  evidence_tampered: {
    title: 'This evidence file was changed on disk since it was stored.',
    action: 'It was not saved or downloaded, and an alert was sent to headquarters. Do not use copies of it; tell your admin.',
  },
  closed: {
    title: 'Casewire is closing to install an update.',
    action: 'Nothing was saved from this action. Wait for Casewire to restart, then do it again.',
  },
  updates_off: {
    title: 'Looking for updates is turned off.',
    action: 'Turn on “Look for updates” first, then check again.',
  },
  updates_unavailable: {
    title: 'This copy of Casewire is not updated from here.',
    action: 'It is updated by the package manager or by whoever installed it. Ask your IT department for newer versions.',
  },
  update_in_progress: {
    title: 'An update is already being checked for or installed.',
    action: 'Wait for it to finish; this screen shows its progress.',
  },
  update_not_offered: {
    title: 'That version is no longer the update on offer.',
    action: 'Check for updates again, then install the version shown.',
  },
  update_channel_unreachable: {
    title: 'The update server could not be reached.',
    action: 'Nothing was installed and Casewire keeps running as it is. Check the network, then check again.',
  },
  update_signature_invalid: {
    title: 'The update was refused: it is not signed by the Casewire developers.',
    action: 'Nothing was installed and Casewire keeps running as it is. Tell your IT department: the download may have been tampered with.',
  },
  update_install_failed: {
    title: 'The update could not be installed.',
    action: 'Casewire keeps running the version it had. Try again later, or install the new version with your package manager.',
  },
  chain_not_configured: {
    title: 'No chain is set up to check this receipt against.',
    action: 'Nothing was recorded. An admin can set the chain’s node and id in Settings (CASEWIRE_CHAIN_RPC_URL and CASEWIRE_CHAIN_ID).',
  },
  chain_unreachable: {
    title: 'The chain’s node cannot be reached, so the receipt could not be checked.',
    action: 'Nothing was recorded. Try again when this laptop is online, or ask an admin to check the node’s address.',
  },
  receipt_refused: {
    title: 'The chain does not confirm this receipt.',
    action: 'Nothing was recorded. Check the transaction hash, block and contract against the tool that made the transaction; the reason is below.',
  },
  shell: {
    title: 'The desktop app could not do this.',
    action: 'Try again, or choose another place to save. The app’s reason is below.',
  },
  network: {
    title: 'The Casewire server cannot be reached.',
    action: 'Check that Casewire is running. Nothing was sent; try again when it is back.',
  },
  unknown: {
    title: 'Something went wrong.',
    action: 'Try again. If it keeps happening, tell your admin.',
  },
} as const satisfies Record<
  // Every code the server may send has its message (the type check fails otherwise), and the
  // codes the UI makes itself.
  ServerErrorCode | 'shell' | 'network' | 'unknown',
  { title: string; action: string }
>;

export type ErrorCode = keyof typeof errorMessages;

export const deliveryStates = {
  waiting: {
    label: 'Waiting on this laptop',
    hint: 'Saved here; it will be sent to headquarters when a connection is available.',
  },
  sending: {
    label: 'Being sent',
    hint: 'Handed to the broker; waiting for its confirmation.',
  },
  delivered: {
    label: 'Delivered',
    hint: 'Headquarters has it.',
  },
  dead_lettered: {
    label: 'Dead-lettered',
    hint: 'Delivery was given up. An admin can replay it from the queue.',
  },
  cleared: {
    label: 'Cleared, never delivered',
    hint: 'An admin cleared the queue before this event reached headquarters.',
  },
} as const;

export type DeliveryStateName = keyof typeof deliveryStates;

export const roles = {
  user: 'Investigator',
  analyst: 'Analyst',
  admin: 'Admin',
  superadmin: 'Superadmin',
} as const;

export const caseStatuses = {
  open: 'Open',
  escalated: 'Escalated',
  closed: 'Closed',
} as const;

export const priorities = {
  critical: 'Critical',
  high: 'High',
  medium: 'Medium',
  low: 'Low',
} as const;

export const rlActions = {
  freeze: 'Freeze',
  investigate: 'Investigate',
  monitor: 'Monitor',
  dismiss: 'Dismiss',
} as const;

export const rlStates: Record<string, string> = {
  known_fraudster: 'Known fraudster (in an escalated case)',
  high_risk: 'High risk (high or critical evidence)',
  reported: 'Reported (evidence on record)',
  unknown: 'Unknown (no evidence on record)',
};

export const settingSources = {
  environment: 'Environment (fixed)',
  file: 'Configuration file',
  desktop: 'Set in the app',
  default: 'Default',
} as const;

/** What each setting does, in a line: the settings screen shows it under the name. */
export const settingHints: Record<string, string> = {
  KAFKA_BROKERS: 'Kafka brokers at headquarters, host:port, separated by commas. Not set: events stay on this laptop.',
  KAFKA_TOPIC: 'The topic events are sent to.',
  KAFKA_CLIENT_ID: 'How this laptop names itself to Kafka.',
  KAFKA_SECURITY_PROTOCOL: 'plaintext, ssl, sasl_plaintext or sasl_ssl. Each change is checked whole against the others: to switch a connected laptop to SASL, clear KAFKA_BROKERS, set these, then set the brokers again.',
  KAFKA_SASL_MECHANISM: 'With SASL: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.',
  KAFKA_SASL_USERNAME: 'With SASL: the user Kafka knows this laptop as.',
  KAFKA_SASL_PASSWORD: 'With SASL: that user’s password.',
  KAFKA_SSL_CA_LOCATION: 'With TLS: a PEM file of the certificate authorities the brokers’ certificates are checked against.',
  KAFKA_MESSAGE_TIMEOUT_MS: 'Milliseconds Kafka has to acknowledge an event before it goes back to the queue.',
  KAFKA_RELAY_WINDOW: 'At most this many events on their way to Kafka at once.',
  RETRY_INTERVAL: 'Milliseconds between delivery attempts of a waiting event.',
  MAX_RETRIES: 'Attempts before an event becomes a dead letter.',
  CASEWIRE_QUEUE_QUOTA_BYTES: 'Space the event queue may use on this laptop, in bytes.',
  CASEWIRE_IDLE_LOCK_MINUTES: 'Minutes without keyboard or pointer input before Casewire locks and signs out (1 to 1440).',
  CASEWIRE_THEME: 'Colours: system (as the computer is set), light or dark.',
  CASEWIRE_CLOSE_TO_TRAY: 'Desktop: true keeps Casewire sending from the tray when the window is closed; false quits.',
  CASEWIRE_HTTP_TIMEOUT_MS: 'casewire serve: milliseconds a client has to send its request headers, that an idle connection is kept, and that a request body may pause.',
  CASEWIRE_HTTP_MAX_CONNECTIONS: 'casewire serve: connections served at once; more wait to be accepted.',
  CASEWIRE_SHUTDOWN_GRACE_MS: 'casewire serve: milliseconds a stop lets requests in progress finish.',
  CASEWIRE_UPDATE_CHECK: 'Desktop: true lets Casewire look for updates (see Updates above); false never asks.',
  CASEWIRE_UPDATE_ENDPOINT: 'Desktop: an https address of an update manifest mirrored by your organisation, in place of the Casewire update server. Updates must still be signed by the Casewire developers.',
  CASEWIRE_UPDATE_CA: 'Desktop: a PEM file of a certificate authority to trust for the update address, besides the system’s.',
  QUEUE_PERSIST: 'true keeps queued events on disk, so they survive a restart; false keeps them in memory only.',
  CASEWIRE_LISTEN: 'The address the API listens on; it answers only on this computer.',
  CASEWIRE_MAX_EVIDENCE_BYTES: 'The largest evidence file accepted, in bytes.',
  CASEWIRE_ENCRYPTION: 'on encrypts the database and the evidence files on this disk; off stores them readable by anyone with the disk (only for a data folder that was never encrypted).',
  CASEWIRE_KEY_STORE: 'Where the key that unlocks the data is kept: keyring (the system’s, the desktop’s default) or file (casewire serve’s default).',
  CASEWIRE_KEY_FILE: 'The key file, when the key is kept in a file: readable by this account only, never inside the data folder.',
  CASEWIRE_CHAIN_RPC_URL: 'The JSON-RPC address of the chain’s node that anchoring uses (http or https). It may hold a provider’s key, so it is never shown. Unset, anchoring waits.',
  CASEWIRE_CHAIN_ID: 'The chain’s id (1 for Ethereum). Casewire signs nothing when the node reports another.',
  CASEWIRE_ANCHOR_CONTRACT: 'An anchoring contract (0x and 40 hex digits); unset, the root goes in a transaction from the anchoring key to itself.',
  CASEWIRE_ANCHOR_CONFIRMATIONS: 'Blocks (the transaction’s own counts 1) before a file counts as anchored.',
  CASEWIRE_ANCHOR_KEY_FILE: 'A file holding the anchoring key, for a server without a keyring: readable by this account only.',
  CASEWIRE_ANCHOR_POLL_MS: 'Milliseconds between looks at a transaction on its way to the chain.',
};

export const eventTypes: Record<string, string> = {
  'evidence.uploaded': 'Evidence added',
  'evidence.verified': 'Evidence verified',
  'evidence.anchored': 'Evidence anchored',
  'evidence.downloaded': 'Evidence downloaded',
  'evidence.deleted': 'Evidence deleted',
  'case.created': 'Case opened',
  'case.updated': 'Case edited',
  'case.assigned': 'Case assigned',
  'case.escalated': 'Case escalated',
  'case.closed': 'Case closed',
  'rl.prediction.made': 'Wallet checked',
  'rl.feedback.received': 'Feedback given',
  'rl.model.updated': 'Policy updated',
  'user.login': 'Signed in',
  'user.unauthorized_access': 'Unauthorised access',
  'user.created': 'User added',
  'user.updated': 'User changed',
  'system.alert': 'System alert',
  'system.error': 'System error',
  'system.info': 'System information',
};

/** The moves of an anchor, which Casewire records as `system.info` with an `action`. */
const anchorActions: Record<string, string> = {
  'anchor.requested': 'Anchoring asked for',
  'anchor.broadcast': 'Anchor sent to the chain',
  'anchor.included': 'Anchor in a block',
  'anchor.reorganised': 'Anchor’s block left the chain',
  'anchor.failed': 'Anchor transaction failed',
  'anchor.case_head': 'Timeline anchored on chain',
};

/** What a timeline entry is called: its type's name, or an anchor's move. */
export function eventLabel(type: string, data: Record<string, unknown>): string {
  const action = typeof data.action === 'string' ? anchorActions[data.action] : undefined;
  return (type === 'system.info' && action) || eventTypes[type] || type;
}

/** One line saying what an event did, from its data; null when there is nothing to add. */
export function eventSummary(type: string, data: Record<string, unknown>, fileNames: Record<string, string> = {}): string | null {
  const str = (k: string) => (typeof data[k] === 'string' ? (data[k] as string) : null);
  if (type === 'system.info' && data.action === 'anchor.case_head') {
    const upTo = typeof data.sequence === 'number' ? `Up to event ${n(data.sequence)}` : 'This timeline';
    return typeof data.blockNumber === 'number' ? `${upTo} · block ${data.blockNumber}` : upTo;
  }
  if (type === 'system.info' && typeof data.action === 'string' && anchorActions[data.action]) {
    const ids = Array.isArray(data.evidenceIds) ? (data.evidenceIds as unknown[]).filter((i): i is string => typeof i === 'string') : [str('evidenceId') ?? ''];
    const names = ids.map((i) => fileNames[i] ?? i).filter(Boolean);
    const files = names.length > 3 ? `${names.slice(0, 3).join(', ')} and ${n(names.length - 3)} more` : names.join(', ');
    const where = typeof data.blockNumber === 'number' ? ` · block ${data.blockNumber}` : '';
    return data.action === 'anchor.failed' ? `${files} · ${str('message') ?? ''}` : `${files}${where}`;
  }
  switch (type) {
    case 'evidence.uploaded':
    case 'evidence.downloaded':
    case 'evidence.verified':
    case 'evidence.deleted':
    case 'evidence.anchored':
      return str('filename') ?? fileNames[str('evidenceId') ?? ''] ?? str('evidenceId');
    case 'case.assigned':
      return str('assignee') ? `To ${str('assignee')}` : null;
    case 'case.escalated':
      return str('authority') ? `To ${str('authority')}` : null;
    case 'case.closed':
      return str('resolution');
    case 'case.updated':
      return str('title');
    case 'case.created':
      return null;
    case 'rl.prediction.made':
      return str('action') && str('wallet') ? `${str('action')} · ${str('wallet')}` : null;
    default:
      return str('message');
  }
}

export const EVENT_TYPE_NAMES = Object.keys(eventTypes);

export const t = {
  appName: 'Casewire',
  examples: {
    caseId: 'CASE-2026-001',
    wallet: '0x…, bc1…, T… or a Solana address',
  },
  skipToContent: 'Skip to content',
  nav: {
    label: 'Main',
    cases: 'Cases',
    evidence: 'Evidence',
    wallet: 'Wallet check',
    queue: 'Queue',
    users: 'Users',
    settings: 'Settings',
    account: 'My account',
    signOut: 'Sign out',
    shortcuts: 'Keyboard shortcuts',
  },
  common: {
    cancel: 'Cancel',
    close: 'Close',
    save: 'Save',
    saving: 'Saving…',
    loading: 'Loading…',
    retry: 'Try again',
    copy: 'Copy',
    copied: 'Copied to the clipboard.',
    copyFailed: 'Could not copy. Select the text and copy it by hand.',
    none: 'None',
    unassigned: 'Unassigned',
    required: 'required',
    optional: 'optional',
    edit: 'Edit',
    refresh: 'Refresh',
    more: 'Load more',
    dismiss: 'Dismiss',
    notifications: 'Notifications',
    yes: 'Yes',
    no: 'No',
    back: 'Back',
    all: 'All',
    signedInAs: (name: string, role: string) => `Signed in as ${name} (${role})`,
  },
  errorsShort: {
    network: 'Casewire is not answering.',
  },
  errors: {
    heading: 'This could not be done',
    withServerReason: (reason: string) => `Server says: ${reason}`,
    noPermissionScreen: 'Your role does not give access to this screen.',
    notFoundScreen: 'There is no such page.',
  },
  setup: {
    title: 'Set up Casewire',
    intro: 'No one has an account on this Casewire yet. Create the first superadmin: that person can then add everyone else.',
    username: 'Username',
    password: 'Password',
    passwordHint: 'At least 12 characters.',
    confirm: 'Password again',
    setupCode: 'Setup code',
    setupCodeHint: 'The server printed a one-time code like ABCD-1234 when it started. Type it here to prove you run this machine.',
    submit: 'Create superadmin and sign in',
    mismatch: 'The two passwords differ.',
    tooShort: 'The password must have at least 12 characters.',
    checking: 'Checking whether Casewire is set up…',
  },
  signIn: {
    title: 'Sign in to Casewire',
    intro: 'Work is saved on this laptop even when headquarters cannot be reached.',
    username: 'Username',
    password: 'Password',
    submit: 'Sign in',
    submitting: 'Signing in…',
    expired: 'Your session ended. Sign in again to continue where you were.',
    locked: (minutes: number) =>
      plural(minutes, {
        one: `Casewire locked after ${n(minutes)} minute without input and signed you out. Sign in again to continue where you were.`,
        other: `Casewire locked after ${n(minutes)} minutes without input and signed you out. Sign in again to continue where you were.`,
      }),
    signedOut: 'You are signed out.',
  },
  sync: {
    label: 'Delivery to headquarters',
    synced: 'Synced',
    syncedTitle: (last: string) => `Everything recorded on this laptop has reached headquarters. ${last}.`,
    sending: (count: number) => plural(count, { one: `Sending ${n(count)} event`, other: `Sending ${n(count)} events` }),
    sendingTitle: (count: number, last: string) =>
      plural(count, {
        one: `${n(count)} event is on its way to headquarters. ${last}.`,
        other: `${n(count)} events are on their way to headquarters. ${last}.`,
      }),
    offline: (count: number) => (count > 0 ? `Offline · ${n(count)} waiting` : 'Offline'),
    offlineDetail: 'Kept on this laptop until a broker answers',
    offlineTitle: (count: number, last: string) =>
      plural(count, {
        one: `No Kafka broker can be reached. ${n(count)} event is kept safe on this laptop and is sent by itself when a broker answers. ${last}.`,
        other: `No Kafka broker can be reached. ${n(count)} events are kept safe on this laptop and are sent by themselves when a broker answers. ${last}.`,
      }),
    error: (count: number) => (count > 0 ? `Delivery error · ${n(count)} waiting` : 'Delivery error'),
    errorNoReason: 'Kafka refused the events',
    errorTitle: (reason: string, count: number) =>
      plural(count, {
        one: `Kafka refuses delivery: ${reason}. An admin must fix the Kafka settings or the broker. ${n(count)} event is kept safe on this laptop until then.`,
        other: `Kafka refuses delivery: ${reason}. An admin must fix the Kafka settings or the broker. ${n(count)} events are kept safe on this laptop until then.`,
      }),
    reasons: {
      authentication: 'Kafka refused the sign-in (SASL)',
      tls: 'TLS certificate problem',
      authorisation: 'Not allowed to write to the topic',
      topic: 'The Kafka topic does not exist',
      tooLarge: 'An event is larger than Kafka accepts',
    },
    notConfigured: (count: number) => (count > 0 ? `Kafka not configured · ${n(count)} waiting` : 'Kafka not configured'),
    notConfiguredDetail: 'Safe on this laptop · admin sets KAFKA_BROKERS',
    notConfiguredTitle: (count: number) =>
      plural(count, {
        one: `No Kafka broker is configured, so nothing is sent to headquarters. ${n(count)} event is kept safe on this laptop. An admin sets KAFKA_BROKERS in Settings; then it is sent.`,
        other: `No Kafka broker is configured, so nothing is sent to headquarters. ${n(count)} events are kept safe on this laptop. An admin sets KAFKA_BROKERS in Settings; then they are sent.`,
      }),
    unsupported: 'Delivery state not reported',
    unknown: 'Checking delivery…',
    unreachable: 'Server unreachable',
    unreachableTitle: 'The Casewire server does not answer. Check that it is running; nothing is lost.',
    starting: 'Casewire is starting…',
    startingDetail: 'Starting or quitting; try again in a moment',
    lastDelivery: (at: Instant, now: number) => `Last delivery ${formatAgo(at, now)}`,
    neverDelivered: 'Nothing delivered yet',
    deadLetters: (count: number) =>
      plural(count, { one: `${n(count)} dead letter`, other: `${n(count)} dead letters` }),
    openQueue: 'Open the queue',
    errorAnnounce: (detail: string) => `Delivery error. ${detail}`,
  },
  delivery: {
    waitingAttempts: (attempts: number) =>
      plural(attempts, { one: `${n(attempts)} failed attempt`, other: `${n(attempts)} failed attempts` }),
    // Within a second reads "now" anyway, so it is due now.
    nextAttempt: (at: Instant, now: number) => ((at instanceof Date ? at.getTime() : typeof at === 'number' ? at : Date.parse(at)) < now + 1000 ? 'Due now; sent as soon as a broker answers' : `Next attempt ${formatRelative(at, now)}`),
    dueNow: 'Due now',
    waitingForKafka: 'Sent once an admin configures Kafka',
    deliveredAt: (at: Instant, now: number) => `Delivered ${formatAgo(at, now)}`,
    deliveredAtTitle: (at: Instant) => `Delivered at ${formatDateTime(at)}`,
    deadReason: (reason: string) => `Dead-lettered: ${reason}`,
    lastError: (error: string) => `Last error: ${error}`,
    unknown: 'Delivery state not reported',
  },
  cases: {
    title: 'Cases',
    intro: 'Open cases, their status and who works on them.',
    statusFilter: 'Status',
    search: 'Search cases',
    searchPlaceholder: 'Title, case id or assignee',
    create: 'New case',
    createTitle: 'Open a new case',
    titleField: 'Title',
    description: 'Description',
    createSubmit: 'Open case',
    created: (id: string) => `Case ${id} opened.`,
    empty: 'No cases yet. Open the first one with “New case”.',
    emptyFiltered: 'No case matches this filter.',
    count: (shown: number, more: boolean) =>
      more ? `The newest ${n(shown)} cases; more below` : plural(shown, { one: `${n(shown)} case`, other: `${n(shown)} cases` }),
    colId: 'Case',
    colTitle: 'Title',
    colStatus: 'Status',
    colAssignee: 'Assignee',
    colUpdated: 'Last change',
    colCreatedBy: 'Opened by',
  },
  caseDetail: {
    back: 'All cases',
    openedBy: (by: string, at: Instant) => `Opened by ${by} on ${formatDateTime(at)}`,
    assignee: 'Assignee',
    status: 'Status',
    edit: 'Edit',
    editTitle: 'Edit case',
    saved: 'Case saved.',
    assign: 'Assign',
    assignTitle: 'Assign case',
    assignTo: 'Investigator',
    assigned: (who: string) => `Case assigned to ${who}.`,
    escalate: 'Escalate',
    escalateTitle: 'Escalate to an authority',
    escalateWarning: 'Escalation is recorded as a critical event and sent to headquarters. It cannot be undone.',
    authority: 'Authority',
    authorityPlaceholder: 'e.g. National Cyber Crime Unit',
    reason: 'Reason',
    escalateSubmit: 'Escalate case',
    escalated: 'Case escalated.',
    close: 'Close case',
    closeTitle: 'Close case',
    closeWarning: 'A closed case cannot be changed any more.',
    resolution: 'Resolution',
    closeSubmit: 'Close case',
    closed: 'Case closed.',
    noDescription: 'No description.',
    timeline: 'Timeline',
    timelineIntro: 'Every action on this case, and whether it has reached headquarters.',
    timelineEmpty: 'Nothing recorded yet.',
    evidence: 'Evidence',
    colWhen: 'When',
    colWhat: 'What',
    colWho: 'Who',
    colDelivery: 'Delivery',
    closedNote: 'This case is closed; it can no longer be changed, and no evidence can be added. An analyst can reopen it.',
    closedNoteAnalyst: 'This case is closed; it can no longer be changed, and no evidence can be added until it is reopened.',
    reopen: 'Reopen case',
    reopened: 'Case reopened.',
    check: 'Check timeline',
    checking: 'Checking…',
    intact: 'The timeline is intact.',
    intactDetail: (events: number, unchained: number) =>
      `All ${plural(events, { one: `${n(events)} event is`, other: `${n(events)} events are` })} present, in order and unchanged since they were recorded.` +
      (unchained > 0 ? ` ${plural(unchained, { one: `${n(unchained)} earlier event predates`, other: `${n(unchained)} earlier events predate` })} the check and cannot be verified.` : ''),
    tampered: (count: number) => plural(count, { one: 'The timeline was changed outside Casewire: 1 problem found.', other: `The timeline was changed outside Casewire: ${n(count)} problems found.` }),
    tamperedAdvice: 'A critical alert for headquarters is now at the top of the timeline; its delivery shows when they have it. Do not rely on this timeline in court; ask headquarters for its copy of the events.',
    problemKinds: { edited: 'Edited:', deleted: 'Deleted:', inserted: 'Added:', reordered: 'Moved:' } as Record<string, string>,
    anchoredHead: (sequence: number, block: number) => `Compared with the timeline as anchored on chain up to event ${n(sequence)} (block ${block}).`,
    onChain: {
      verified: 'The chain confirms that anchor.',
      refused: 'The chain does not hold that anchor: the records of it on this laptop were altered.',
      not_checked: 'Not confirmed by the chain: that anchor was taken from this laptop’s records.',
    } as Record<string, string>,
    notAnchored: 'This timeline has not been anchored on chain yet, so the check stands on this laptop’s records alone. Its head is anchored with the next evidence file anchored.',
  },
  evidence: {
    title: 'Evidence',
    intro: 'Files kept as evidence, by case or by wallet. Each file’s SHA-256 is recorded when it is added.',
    byCase: 'Case id',
    byWallet: 'Wallet',
    find: 'Show evidence',
    findHint: 'Enter a case id or a wallet address.',
    empty: 'No evidence yet.',
    add: 'Add evidence',
    addTitle: 'Add evidence',
    drop: 'Drop files here, or',
    dropHint: 'or drop files on this list',
    pick: 'Choose files…',
    wallet: 'Wallet address',
    walletHint: 'An EVM address (0x and 40 hex digits), Bitcoin (1…, 3…, bc1…), Tron (T…) or Solana.',
    contractHint: '0x followed by 40 hexadecimal digits.',
    chains: { evm: 'EVM', bitcoin: 'Bitcoin', tron: 'Tron', solana: 'Solana' } as Record<string, string>,
    reporter: 'Reported by',
    riskLevel: 'Risk level',
    riskNone: 'Not stated',
    chosen: (count: number) => plural(count, { one: `${n(count)} file chosen`, other: `${n(count)} files chosen` }),
    upload: 'Add to case',
    uploading: (name: string, percent: string) => `Adding ${name}: ${percent}`,
    uploaded: (name: string) => `${name} added; its hash is recorded.`,
    colFile: 'File',
    colSize: 'Size',
    colHash: 'SHA-256',
    colAdded: 'Added',
    colWallet: 'Wallet',
    colCase: 'Case',
    colRisk: 'Risk',
    deleted: 'Deleted',
    deletedOn: (at: Instant) => `Content deleted on ${formatDateTime(at)}; the record and hash are kept.`,
    detailBack: 'Back to the case',
    hash: 'SHA-256',
    copyHash: 'Copy hash',
    filename: 'File name',
    size: 'Size',
    type: 'Type',
    uploadedBy: (by: string, at: Instant) => `Added by ${by} on ${formatDateTime(at)}`,
    verify: 'Verify hash',
    verifying: 'Recomputing the hash…',
    verifyOk: 'The file is intact: its hash matches the one recorded.',
    verifyMismatch: 'ALARM: the file has changed. Its hash no longer matches the one recorded. A critical alert is recorded and goes to headquarters with the next delivery.',
    verifyUnreadable: 'ALARM: the file could not be read, so its hash could not be checked.',
    mismatchMarked: 'The characters that differ from the recorded hash are marked.',
    storedHash: 'Recorded hash',
    computedHash: 'Hash now',
    download: 'Download',
    downloaded: (name: string) => `${name} saved.`,
    delete: 'Delete file',
    deleteTitle: 'Delete this evidence file?',
    deleteBody: (name: string) => `The content of ${name} will be deleted from this laptop. Its record and SHA-256 stay, and the deletion is recorded as a critical event.`,
    deleteSubmit: 'Delete file',
    deletedToast: 'File deleted; its record and hash are kept.',
    anchors: 'On-chain anchor',
    anchorsIntro: 'Anchoring writes a fingerprint of this file on a public chain, so anyone can later show it existed unchanged at that time. The chain never sees the file or its hash.',
    anchorsEmpty: 'Not anchored yet.',
    anchorNow: 'Anchor on chain',
    anchorAsked: 'Anchoring asked for: it goes on chain as soon as Casewire can reach the chain.',
    anchorStates: {
      waiting: 'Waiting for the chain',
      signed: 'Ready to send',
      pending: 'Sent, waiting to be mined',
      included: 'In a block, gathering confirmations',
      anchored: 'Anchored',
    } as Record<string, string>,
    anchorExplain: {
      waiting: 'Asked for and kept on this laptop. It goes on chain when Casewire can reach the chain’s node; nothing needs doing.',
      signed: 'Its transaction is signed and saved; it is sent next.',
      pending: 'The transaction is with the chain’s node and not yet in a block. It is sent again until it is.',
      included: 'The transaction is in a block. The anchor counts once enough blocks are on top of it.',
      anchored: 'The anchor holds. Its proof lets anyone check it with a node of the chain and nothing else.',
    } as Record<string, string>,
    anchorAskedLabel: 'Asked for',
    anchorNoChain: 'No chain is set up on this Casewire yet, so it waits until an admin sets the chain’s node and id in Settings (CASEWIRE_CHAIN_RPC_URL and CASEWIRE_CHAIN_ID).',
    anchorRequested: (by: string, at: Instant) => `By ${by} on ${formatDateTime(at)}`,
    anchorConfirmations: (have: number, need: number) => `${n(have)} of ${n(need)} confirmations`,
    anchorBlock: 'Block',
    anchorChain: 'Chain id',
    anchorRoot: 'Merkle root',
    anchorBatch: (count: number) => plural(count, { one: 'This file alone', other: `With ${n(count - 1)} other files in one transaction` }),
    anchorLastError: (message: string) => `Last attempt failed: ${message} Casewire tries again by itself.`,
    proofDownload: 'Download proof',
    proofSave: 'Save proof…',
    proofSaved: (name: string) => `Proof saved as ${name}.`,
    proofCopy: 'Copy proof',
    proofCopied: 'Proof copied.',
    receiptsTitle: 'Receipts recorded',
    anchor: 'Record a receipt',
    anchorTitle: 'Record a receipt made elsewhere',
    anchorTitleIntro: 'For a transaction made with another wallet or tool. Casewire checks it on the configured chain before recording it.',
    txHash: 'Transaction hash',
    txHashHint: '0x followed by 64 hexadecimal digits.',
    blockNumber: 'Block number',
    contractAddress: 'Contract address',
    anchorSubmit: 'Record anchor',
    anchored: 'Receipt checked on chain and recorded.',
    colTx: 'Transaction',
    colBlock: 'Block',
    colContract: 'Contract',
    colAnchoredBy: 'Recorded by',
  },
  wallet: {
    title: 'Wallet check',
    intro: 'Ask the policy what to do about a wallet. It learns from the feedback analysts give.',
    address: 'Wallet address',
    caseId: 'Case id (optional)',
    check: 'Check wallet',
    checking: 'Checking…',
    recommended: 'Recommended action',
    score: 'Score (0 to 1)',
    state: 'Wallet state',
    modelLabel: 'Policy version',
    model: (version: number) => n(version),
    feedback: 'Was this right?',
    feedbackIntro: 'Tell the policy what should have been done.',
    actual: 'What should be done',
    sendFeedback: 'Send feedback',
    feedbackSaved: (outcome: string) => (outcome === 'correct' ? 'Feedback recorded: the recommendation was right.' : 'Feedback recorded: the recommendation was wrong; the policy has learnt from it.'),
    evidence: 'Evidence for this wallet',
  },
  queue: {
    anchoring: {
      title: 'Anchoring on chain',
      off: (waiting: number) =>
        `No chain is set up, so evidence asked to be anchored waits${waiting > 0 ? ` (${plural(waiting, { one: '1 file', other: `${n(waiting)} files` })} now)` : ''}. A superadmin sets CASEWIRE_CHAIN_RPC_URL and CASEWIRE_CHAIN_ID in Settings; they apply at the next start.`,
      chain: 'Chain',
      chainIs: (id: number, endpoint: string) => `Chain ${id} through ${endpoint}`,
      contract: (address: string) => `contract ${address}`,
      address: 'Anchoring address',
      copyAddress: 'Copy the anchoring address',
      noAddress: 'Not known yet: the anchoring key is made when the app starts with a chain set up.',
      balance: 'Its balance',
      coins: (amount: string) => `${amount} of the chain’s coin`,
      emptyBalance: 'This address has no coin to pay gas with, so nothing can be anchored. Send it a small amount of the chain’s coin.',
      balanceUnknown: (why: string) => `Unknown: ${why}`,
      waiting: 'Waiting',
      waitingFiles: (count: number) => (count === 0 ? 'Nothing' : plural(count, { one: '1 file', other: `${n(count)} files` })),
      lastError: (why: string) => `Last attempt: ${why}`,
      inFlight: 'In flight',
      batch: (state: string, files: number, heads: number, confirmations: number, required: number) =>
        `${({ signed: 'Signed, not sent yet', pending: 'Sent, waiting to be mined', included: `In a block, ${n(confirmations)} of ${n(required)} confirmations` } as Record<string, string>)[state] ?? state}: ${plural(files, { one: '1 file', other: `${n(files)} files` })} and ${plural(heads, { one: '1 case timeline', other: `${n(heads)} case timelines` })}`,
      none: 'Nothing',
      last: 'Last anchored',
      lastBatch: (files: number, heads: number, block: number) =>
        `${plural(files, { one: '1 file', other: `${n(files)} files` })} and ${plural(heads, { one: '1 case timeline', other: `${n(heads)} case timelines` })} in block ${block}`,
      never: 'Nothing yet',
      fundAdvice: (depth: number) =>
        `This address signs one transaction per batch (up to 10,000 files) and pays its gas; it is a key for that alone, never anyone’s own. A batch counts as anchored ${plural(depth, { one: 'once its block is mined', other: `at ${n(depth)} confirmations (its own block is the first)` })}.`,
    },
    title: 'Event queue',
    intro: 'Events saved on this laptop and not yet delivered to headquarters.',
    live: 'Live',
    paused: 'Updates slower while this window is hidden.',
    depth: 'Queued',
    inFlight: 'Being sent',
    oldest: 'Oldest waiting',
    oldestNone: 'Nothing waiting',
    broker: 'Broker',
    brokerConnected: 'Connected',
    brokerDisconnected: 'Not reachable',
    brokerNotConfigured: 'Not configured',
    storage: 'Storage',
    storageOf: (used: number, quota: number) => `${formatBytes(used)} of ${formatBytes(quota)}`,
    deadLetters: 'Dead letters',
    byPriority: 'By priority',
    chartTitle: 'Queue depth and delivery rate, last 15 minutes',
    chartDepth: 'Queued events',
    chartRate: 'Delivered per second',
    chartTable: 'Show as table',
    chartTableCaption: 'Queue depth and delivery rate, one row per sample, newest first',
    colTime: 'Time',
    chartEmpty: 'Collecting samples…',
    chartUnavailable: 'The chart cannot be drawn here; the table below shows the same figures.',
    chartSummary: (depth: number, rate: string) => `Now ${n(depth)} queued; ${rate} delivered per second.`,
    retry: 'Retry now',
    retried: (count: number) => plural(count, { one: `${n(count)} waiting event is due now.`, other: `${n(count)} waiting events are due now.` }),
    testEvent: 'Send test event',
    testSent: (id: string) => `Test event ${id} queued.`,
    testTitle: 'Send a test event',
    testIntro: 'A test event goes through the queue and the broker like any other; use it to check delivery to headquarters.',
    testType: 'Event type',
    testMessage: 'Message',
    testDefault: 'Test event from the Casewire queue screen',
    testSubmit: 'Queue test event',
    jsonLoading: 'Loading the event…',
    notAdmin: 'Only admins can manage the queue. This is what is still waiting to reach headquarters.',
    waiting: 'Waiting on this laptop',
    lastDelivery: 'Last delivery',
    lastError: 'Last error',
    openSettings: 'Open the Kafka settings',
    nextNoKafka: 'When Kafka is configured',
    never: 'Never',
    matching: (shown: number, total: number) => `${n(shown)} of ${n(total)} loaded events match`,
    clear: 'Clear queue…',
    clearTitle: 'Clear the queue?',
    clearBody: (count: number) =>
      plural(count, {
        one: `This drops ${n(count)} queued event for good. It will never reach headquarters. A critical alert records who did it.`,
        other: `This drops ${n(count)} queued events for good. They will never reach headquarters. A critical alert records who did it.`,
      }),
    clearConfirm: (count: number) => `Type ${n(count)} to confirm`,
    clearSubmit: 'Clear queue',
    cleared: (count: number) => plural(count, { one: `${n(count)} event dropped.`, other: `${n(count)} events dropped.` }),
    eventsTitle: 'Queued events',
    filterTitle: 'Filter',
    filterIntro: 'Applies to the queued events and the dead letters below, and to the export.',
    filterType: 'Event type',
    filterPriority: 'Priority',
    filterSearch: 'Search id, key or error',
    anyType: 'Any type',
    anyPriority: 'Any priority',
    colEvent: 'Event',
    colType: 'Type',
    colPriority: 'Priority',
    colRetries: 'Retries',
    colAdded: 'Added',
    colNext: 'Next attempt',
    colError: 'Last error',
    colReason: 'Reason',
    colAttempts: 'Attempts',
    colDeadAt: 'Given up',
    view: 'View JSON',
    eventJsonTitle: (id: string) => `Event ${id}`,
    noEvents: 'No events waiting. Everything has reached headquarters.',
    noEventsFiltered: 'No queued event matches this filter.',
    export: 'Export as JSON',
    exported: (count: number, file: string) => plural(count, { one: `${n(count)} event exported to ${file}.`, other: `${n(count)} events exported to ${file}.` }),
    deadTitle: 'Dead letters',
    deadIntro: 'Events whose delivery was given up. Replay puts them back in the queue to their original destination.',
    noDead: 'No dead letters.',
    selectAll: 'Select all shown',
    selectRow: (id: string) => `Select ${id}`,
    replaySelected: (count: number) => plural(count, { one: `Replay ${n(count)} selected`, other: `Replay ${n(count)} selected` }),
    replayAll: (count: number) => `Replay all ${n(count)} matching`,
    discardSelected: (count: number) => plural(count, { one: `Discard ${n(count)} selected`, other: `Discard ${n(count)} selected` }),
    discardAll: (count: number) => `Discard all ${n(count)} matching`,
    replayTitle: 'Replay dead letters?',
    replayBody: (count: number) =>
      plural(count, { one: `${n(count)} dead letter goes back into the queue and will be sent again.`, other: `${n(count)} dead letters go back into the queue and will be sent again.` }),
    discardTitle: 'Discard dead letters?',
    discardBody: (count: number) =>
      plural(count, { one: `${n(count)} dead letter will be deleted for good and never reach headquarters.`, other: `${n(count)} dead letters will be deleted for good and never reach headquarters.` }),
    replayed: (count: number) => plural(count, { one: `${n(count)} dead letter replayed.`, other: `${n(count)} dead letters replayed.` }),
    discarded: (count: number) => plural(count, { one: `${n(count)} dead letter discarded.`, other: `${n(count)} dead letters discarded.` }),
    ageOf: (ms: number) => formatDuration(ms),
  },
  users: {
    title: 'Users',
    intro: 'Who can sign in to this Casewire, and what they may do.',
    add: 'Add user',
    addTitle: 'Add a user',
    username: 'Username',
    role: 'Role',
    password: 'Initial password',
    passwordHint: 'At least 12 characters. Give it to the person in private; they can change it.',
    addSubmit: 'Add user',
    added: (name: string) => `${name} added.`,
    colUser: 'Username',
    colRole: 'Role',
    colStatus: 'Status',
    colCreated: 'Added',
    colActions: 'Actions',
    active: 'Active',
    disabled: 'Disabled',
    disable: 'Disable',
    enable: 'Enable',
    disableTitle: (name: string) => `Disable ${name}?`,
    disableBody: 'They are signed out everywhere and cannot sign in until enabled again. Their work stays.',
    disabledToast: (name: string) => `${name} disabled.`,
    enabledToast: (name: string) => `${name} enabled.`,
    roleChanged: (name: string, role: string) => `${name} is now ${role}.`,
    changeRole: (name: string) => `Role of ${name}`,
    reset: 'Reset password',
    resetTitle: (name: string) => `New password for ${name}`,
    resetBody: 'Their current sessions end. Give them the new password in private.',
    resetSubmit: 'Set password',
    resetDone: (name: string) => `Password of ${name} reset.`,
    you: '(you)',
  },
  account: {
    title: 'My account',
    intro: 'Your sign-in and your password.',
    changePassword: 'Change password',
    current: 'Current password',
    next: 'New password',
    confirm: 'New password again',
    submit: 'Change password',
    changed: 'Password changed.',
  },
  settings: {
    title: 'Settings',
    intro: 'How this Casewire is configured, and where each value comes from. Values set by the environment are fixed here; secrets are never shown.',
    colKey: 'Setting',
    colValue: 'Value',
    colSource: 'Comes from',
    secretSet: 'Set (hidden)',
    secretUnset: 'Not set',
    unset: 'Not set',
    fixed: 'Fixed by the environment',
    fixedFile: 'Fixed by the configuration file',
    notEditable: 'Cannot be changed from this screen',
    appliesNextStart: 'Takes effect when Casewire next starts.',
    readOnlyRole: 'Only a superadmin can change settings.',
    reset: 'Back to default',
    saved: (key: string) => `${key} saved.`,
    resetDone: (key: string) => `${key} is back to its default.`,
    newValue: (key: string) => `New value for ${key}`,
    secretPlaceholder: 'Type a new secret to replace it',
    unsetPlaceholder: 'Not set',
  },
  updates: {
    title: 'Updates',
    version: (v: string) => `This is Casewire ${v}.`,
    noChannel: 'This copy of Casewire is updated by the package manager or by whoever installed it, not from here.',
    allow: 'Look for updates',
    allowHint: 'Casewire asks the Casewire update server once a day and when you press Check now. Nothing is downloaded until you choose to install.',
    allowedOn: 'Casewire will look for updates.',
    allowedOff: 'Casewire will not look for updates.',
    check: 'Check now',
    checking: 'Checking…',
    upToDate: (when: string) => `Casewire is up to date (checked ${when}).`,
    neverChecked: 'Not checked since Casewire started: it looks within a minute, then once a day.',
    available: (v: string) => `Casewire ${v} is available.`,
    published: (when: string) => `Published ${when}.`,
    install: 'Install and restart…',
    confirmTitle: (v: string) => `Install Casewire ${v}?`,
    confirmBody: 'Casewire saves everything in progress, stops sending for a moment, installs the update and restarts. Events already queued stay queued and are sent after the restart. Your computer may ask for an administrator’s password.',
    confirm: 'Install and restart',
    downloading: (pct: string) => `Downloading and checking the update… ${pct}`,
    installing: 'Installing the update. Casewire restarts in a moment.',
    lastError: 'The last attempt did not work:',
  },
  shortcuts: {
    title: 'Keyboard shortcuts',
    intro: 'Shortcuts work anywhere in this window except while typing in a field.',
    keys: [
      ['?', 'Show this list'],
      ['g then c', 'Go to cases'],
      ['g then e', 'Go to evidence'],
      ['g then w', 'Go to wallet check'],
      ['g then q', 'Go to the queue'],
      ['g then u', 'Go to users'],
      ['g then s', 'Go to settings'],
      ['g then a', 'Go to my account'],
      ['n', 'New case (on the cases screen)'],
      ['/', 'Search (on screens with a search field)'],
      ['Esc', 'Close a dialog'],
    ] as [string, string][],
  },
} as const;
