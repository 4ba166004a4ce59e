import { describe, expect, it } from 'vitest';
import { ApiFailure, ERROR_CODES, codeForStatus, describeError } from '../src/lib/errors';
import { errorMessages } from '../src/lib/i18n/en';
import openapi from '../openapi.json';

// Every code the server and CONTRACT.md name, and the client's own for an unreachable server.
const SERVER_CODES = [
  'invalid_request',
  'conflict',
  'bad_credentials',
  'login_throttled',
  'unauthenticated',
  'forbidden',
  'too_large',
  'not_found',
  'gone',
  'queue_full',
  'internal',
  'unsupported_media_type',
  'cross_origin',
  'bad_host',
  'setup_done',
  'setup_code_invalid',
  'idempotency_key_reused',
  'idempotency_in_progress',
  'idempotency_outcome_unknown',
  'local_files_unavailable',
  'invalid_setting',
  'settings_unavailable',
  'unknown_file_handle',
  'answer_too_large',
  'starting',
  'network',
];

describe('error catalogue', () => {
  it.each(SERVER_CODES)('%s has its own message saying what happened and what to do', (code) => {
    const text = describeError(new ApiFailure(code, 400, 'server words'));
    expect(text.code).toBe(code);
    expect(text.title.length).toBeGreaterThan(10);
    expect(text.action.length).toBeGreaterThan(10);
    expect(text.title).not.toBe(errorMessages.unknown.title);
  });

  it('gives each code a distinct message', () => {
    const titles = ERROR_CODES.map((c) => errorMessages[c].title);
    expect(new Set(titles).size).toBe(titles.length);
  });

  it('falls back on the status for a code it does not know, and shows the server reason', () => {
    const text = describeError(new ApiFailure('brand_new_code', 507, 'disk says no'));
    expect(text.code).toBe('queue_full');
    expect(text.detail).toBe('disk says no');
    expect(describeError(new ApiFailure('x', 503, null)).code).toBe('internal');
  });

  it('shows the server reason for invalid input but not for a wrong password', () => {
    expect(describeError(new ApiFailure('invalid_request', 400, 'title is required')).detail).toBe('title is required');
    expect(describeError(new ApiFailure('bad_credentials', 401, 'bad credentials')).detail).toBeNull();
  });

  it('treats a fetch TypeError as the server being unreachable', () => {
    expect(describeError(new TypeError('Failed to fetch')).code).toBe('network');
    expect(describeError(new Error('weird')).code).toBe('unknown');
  });

  it('maps statuses to codes', () => {
    expect(codeForStatus(401)).toBe('unauthenticated');
    expect(codeForStatus(421)).toBe('bad_host');
    expect(codeForStatus(0)).toBe('network');
    expect(codeForStatus(418)).toBe('unknown');
  });
});

describe('the OpenAPI document', () => {
  it('names no error code the catalogue lacks', () => {
    // The type check holds the catalogue to the generated types; this holds it to the
    // document the server serves, which the types come from.
    const codes: string[] = openapi.components.schemas.ErrorCode.enum;
    expect(codes.length).toBeGreaterThan(30);
    const missing = codes.filter((c) => !(c in errorMessages));
    expect(missing).toEqual([]);
  });
});
