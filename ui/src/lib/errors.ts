// API failures and the message that explains each one: what happened and what to do.
import { errorMessages, type ErrorCode } from './i18n/en';

export class ApiFailure extends Error {
  readonly code: string;
  readonly status: number;
  /** The server's own message (for people), when there is one. */
  readonly serverMessage: string | null;

  constructor(code: string, status: number, serverMessage: string | null) {
    super(serverMessage ?? code);
    this.name = 'ApiFailure';
    this.code = code;
    this.status = status;
    this.serverMessage = serverMessage;
  }
}

/** The desktop shell refused a command; it rejects with a message string. */
export class ShellError extends Error {
  constructor(reason: unknown) {
    super(typeof reason === 'string' ? reason : reason instanceof Error ? reason.message : String(reason));
    this.name = 'ShellError';
  }
}

export const ERROR_CODES = Object.keys(errorMessages) as ErrorCode[];

function isKnown(code: string): code is ErrorCode {
  return Object.prototype.hasOwnProperty.call(errorMessages, code);
}

/** A code the server did not name, guessed from the status. */
export function codeForStatus(status: number): ErrorCode {
  switch (status) {
    case 400:
      return 'invalid_request';
    case 401:
      return 'unauthenticated';
    case 403:
      return 'forbidden';
    case 404:
      return 'not_found';
    case 409:
      return 'conflict';
    case 408:
      return 'request_timeout';
    case 410:
      return 'gone';
    case 413:
      return 'too_large';
    case 415:
      return 'unsupported_media_type';
    case 421:
      return 'bad_host';
    case 429:
      return 'login_throttled';
    case 507:
      return 'queue_full';
    case 0:
      return 'network';
    default:
      return status >= 500 ? 'internal' : 'unknown';
  }
}

export interface ErrorText {
  code: ErrorCode;
  title: string;
  action: string;
  /** The server's reason, shown as well where it adds detail (invalid input, conflicts). */
  detail: string | null;
}

const DETAIL_CODES = new Set<string>(['invalid_request', 'invalid_setting', 'settings_unavailable', 'conflict', 'not_found', 'too_large', 'gone', 'queue_full', 'login_throttled', 'internal']);

export function describeError(error: unknown): ErrorText {
  let code: ErrorCode = 'unknown';
  let detail: string | null = null;
  if (error instanceof ApiFailure) {
    code = isKnown(error.code) ? error.code : codeForStatus(error.status);
    if (DETAIL_CODES.has(code) || !isKnown(error.code)) detail = error.serverMessage;
  } else if (error instanceof ShellError) {
    code = 'shell';
    detail = error.message || null;
  } else if (error instanceof TypeError) {
    // fetch rejects with a TypeError when the server cannot be reached.
    code = 'network';
  }
  const text = errorMessages[code];
  return { code, title: text.title, action: text.action, detail };
}
