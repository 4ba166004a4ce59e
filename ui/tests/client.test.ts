import { beforeEach, describe, expect, it, vi } from 'vitest';
import { ApiFailure } from '../src/lib/errors';

const requests: Request[] = [];
let answer: () => Response | Promise<Response> = () => new Response('{}');

vi.stubGlobal(
  'fetch',
  vi.fn(async (input: Request | string, init?: RequestInit) => {
    requests.push(input instanceof Request ? input : new Request(input, init));
    return answer();
  }),
);

const { api, call, configureAuth } = await import('../src/lib/api/client');

function json(status: number, body: unknown) {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
}

describe('the API client', () => {
  const onUnauthenticated = vi.fn();
  beforeEach(() => {
    requests.length = 0;
    onUnauthenticated.mockReset();
    configureAuth({ getToken: () => 'tok123', onUnauthenticated });
  });

  it('sends the bearer token to the page origin in a browser', async () => {
    answer = () => json(200, { success: true, cases: [], timestamp: '' });
    await call(api.GET('/api/cases'));
    expect(requests[0]!.headers.get('Authorization')).toBe('Bearer tok123');
    expect(new URL(requests[0]!.url).origin).toBe(location.origin);
    expect(new URL(requests[0]!.url).pathname).toBe('/api/cases');
  });

  it('puts a fresh Idempotency-Key on POSTs that create, none on login', async () => {
    answer = () => json(201, { success: true, case: {}, timestamp: '' });
    await call(api.POST('/api/cases', { body: { title: 'a', description: '' } }));
    await call(api.POST('/api/cases', { body: { title: 'a', description: '' } }));
    const [k1, k2] = requests.map((r) => r.headers.get('Idempotency-Key'));
    expect(k1).toMatch(/^[0-9a-f-]{36}$/);
    expect(k2).toMatch(/^[0-9a-f-]{36}$/);
    expect(k1).not.toBe(k2);
    answer = () => json(200, { success: true, token: 't', expiresAt: '', user: { id: 1, username: 'u', role: 'user' }, timestamp: '' });
    await call(api.POST('/api/auth/login', { body: { username: 'u', password: 'p' } }));
    expect(requests[2]!.headers.get('Idempotency-Key')).toBeNull();
  });

  it('ends the session on 401 unauthenticated, and only then', async () => {
    answer = () => json(401, { success: false, error: { code: 'unauthenticated', message: 'token expired' }, timestamp: '' });
    const failure = await call(api.GET('/api/cases')).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(ApiFailure);
    expect((failure as ApiFailure).code).toBe('unauthenticated');
    expect(onUnauthenticated).toHaveBeenCalledTimes(1);

    answer = () => json(401, { success: false, error: { code: 'bad_credentials', message: 'no' }, timestamp: '' });
    const wrong = await call(api.POST('/api/auth/login', { body: { username: 'u', password: 'p' } })).catch((e: unknown) => e);
    expect((wrong as ApiFailure).code).toBe('bad_credentials');
    expect(onUnauthenticated).toHaveBeenCalledTimes(1);
  });

  it('keeps the server code and message, and names an unreachable server', async () => {
    answer = () => json(400, { success: false, error: { code: 'invalid_request', message: 'title is required' }, timestamp: '' });
    const bad = (await call(api.POST('/api/cases', { body: { title: '', description: '' } })).catch((e: unknown) => e)) as ApiFailure;
    expect([bad.code, bad.status, bad.serverMessage]).toEqual(['invalid_request', 400, 'title is required']);

    answer = () => Promise.reject(new TypeError('Failed to fetch'));
    const down = (await call(api.GET('/api/cases')).catch((e: unknown) => e)) as ApiFailure;
    expect(down.code).toBe('network');
  });
});
