// The one API client: openapi-fetch on the generated types. Desktop and browser differ only in
// the base URL (platform.ts). Every failure becomes an ApiFailure with a catalogued code; a 401
// `unauthenticated` anywhere hands over to the session (back to sign-in, then back here).
import createClient, { type Middleware } from 'openapi-fetch';
import type { paths } from './schema';
import { apiBaseUrl } from '../platform';
import { ApiFailure, codeForStatus } from '../errors';

interface AuthHooks {
  getToken: () => string | null;
  onUnauthenticated: () => void;
}

let hooks: AuthHooks = { getToken: () => null, onUnauthenticated: () => {} };

export function configureAuth(next: AuthHooks): void {
  hooks = next;
}

/** POSTs that must not carry a key: the server never replays logins, and logout is harmless. */
const NO_IDEMPOTENCY = ['/api/auth/login', '/api/auth/logout'];

export function newIdempotencyKey(): string {
  return crypto.randomUUID();
}

const middleware: Middleware = {
  onRequest({ request, schemaPath }) {
    const token = hooks.getToken();
    if (token && !request.headers.has('Authorization')) request.headers.set('Authorization', `Bearer ${token}`);
    if (request.method === 'POST' && !NO_IDEMPOTENCY.includes(schemaPath) && !request.headers.has('Idempotency-Key')) {
      request.headers.set('Idempotency-Key', newIdempotencyKey());
    }
    return request;
  },
};

export const baseUrl = apiBaseUrl();

export const api = createClient<paths>({ baseUrl });
api.use(middleware);

interface Answer<T> {
  data?: T;
  error?: unknown;
  response: Response;
}

function errorBody(body: unknown): { code: string | null; message: string | null } {
  if (body && typeof body === 'object' && 'error' in body) {
    const e = (body as { error: unknown }).error;
    if (e && typeof e === 'object') {
      const code = 'code' in e && typeof e.code === 'string' ? e.code : null;
      const message = 'message' in e && typeof e.message === 'string' ? e.message : null;
      return { code, message };
    }
  }
  return { code: null, message: typeof body === 'string' && body ? body : null };
}

/** Turns a failed answer into an ApiFailure, telling the session about an expired token. */
export function failureOf(status: number, body: unknown): ApiFailure {
  const { code, message } = errorBody(body);
  const failure = new ApiFailure(code ?? codeForStatus(status), status, message);
  if (status === 401 && failure.code === 'unauthenticated') hooks.onUnauthenticated();
  return failure;
}

/** Awaits an openapi-fetch call: the data on success, an ApiFailure otherwise. */
export async function call<T>(request: Promise<Answer<T>>): Promise<T> {
  let answer: Answer<T>;
  try {
    answer = await request;
  } catch (error) {
    if (error instanceof DOMException && error.name === 'AbortError') throw error;
    throw new ApiFailure('network', 0, error instanceof Error ? error.message : null);
  }
  if (answer.response.ok && answer.error === undefined) return answer.data as T;
  throw failureOf(answer.response.status, answer.error);
}

/** A raw request with the same headers, for bodies openapi-fetch does not model (blobs, text). */
export async function rawFetch(path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  const token = hooks.getToken();
  if (token) headers.set('Authorization', `Bearer ${token}`);
  let response: Response;
  try {
    response = await fetch(new URL(path.replace(/^\//, ''), baseUrl), { ...init, headers });
  } catch (error) {
    if (error instanceof DOMException && error.name === 'AbortError') throw error;
    throw new ApiFailure('network', 0, error instanceof Error ? error.message : null);
  }
  if (!response.ok) {
    let body: unknown = null;
    try {
      body = await response.json();
    } catch {
      body = null;
    }
    throw failureOf(response.status, body);
  }
  return response;
}

export function authHeader(): string | null {
  const token = hooks.getToken();
  return token ? `Bearer ${token}` : null;
}
