// Who is signed in. The token lives in sessionStorage (gone when the window closes). A 401
// anywhere ends the session: the app then shows sign-in over the same hash, so after signing
// in the person is back on the page they were on.
import { api, call, configureAuth } from '../api/client';
import type { LoginAnswer, Preferences, SessionUser } from '../api/types';
import { ApiFailure } from '../errors';
import { applyTheme, parseTheme } from '../theme';

const KEY = 'casewire.session';

interface Stored {
  token: string;
  expiresAt: string;
  user: SessionUser;
}

function load(): Stored | null {
  try {
    const raw = sessionStorage.getItem(KEY);
    if (!raw) return null;
    const stored = JSON.parse(raw) as Stored;
    return Date.parse(stored.expiresAt) > Date.now() ? stored : null;
  } catch {
    return null;
  }
}

class Session {
  user = $state<SessionUser | null>(null);
  /** Set when a signed-in session ended by itself (expired or revoked). */
  expired = $state(false);
  /** null until known; true when no user exists yet. */
  needsSetup = $state<boolean | null>(null);
  setupCodeRequired = $state(false);
  /** How the UI behaves (theme, idle lock); null until `GET /api/auth/me` answered. */
  preferences = $state<Preferences | null>(null);
  /** Set when the session locked for lack of input: who it was, and after how long. */
  locked = $state<{ username: string; minutes: number } | null>(null);
  token: string | null = null;

  constructor() {
    const stored = typeof sessionStorage === 'undefined' ? null : load();
    if (stored) {
      this.token = stored.token;
      this.user = stored.user;
    }
    configureAuth({ getToken: () => this.token, onUnauthenticated: () => this.expire() });
  }

  private accept(answer: LoginAnswer): void {
    this.token = answer.token;
    this.user = answer.user;
    this.expired = false;
    this.locked = null;
    this.needsSetup = false;
    sessionStorage.setItem(KEY, JSON.stringify({ token: answer.token, expiresAt: answer.expiresAt, user: answer.user }));
  }

  private forget(): void {
    this.token = null;
    this.user = null;
    this.preferences = null;
    sessionStorage.removeItem(KEY);
  }

  /** Whether this Casewire has any user yet; a server without the setup route has. */
  async checkSetup(): Promise<void> {
    try {
      const answer = await call(api.GET('/api/setup'));
      this.needsSetup = answer.needsSetup;
      this.setupCodeRequired = answer.setupCodeRequired;
    } catch (error) {
      if (error instanceof ApiFailure && error.code === 'not_found') {
        this.needsSetup = false;
        return;
      }
      throw error;
    }
  }

  /** Re-reads who we are (role changes); a 401 here ends the session through the client. */
  async refresh(): Promise<void> {
    if (!this.token) return;
    try {
      const answer = await call(api.GET('/api/auth/me'));
      this.user = answer.user;
      this.preferences = answer.preferences;
      applyTheme(parseTheme(answer.preferences.theme));
    } catch (error) {
      if (!(error instanceof ApiFailure && error.code === 'not_found')) throw error;
    }
  }

  async signIn(username: string, password: string): Promise<void> {
    const answer = await call(api.POST('/api/auth/login', { body: { username, password } }));
    this.accept(answer as LoginAnswer);
    await this.refresh().catch(() => {});
  }

  async setup(username: string, password: string, setupCode: string | null): Promise<void> {
    const body = setupCode ? { username, password, setupCode } : { username, password };
    const answer = await call(api.POST('/api/setup', { body }));
    this.accept(answer);
    await this.refresh().catch(() => {});
  }

  async signOut(): Promise<void> {
    try {
      if (this.token) await call(api.POST('/api/auth/logout'));
    } catch {
      // Signed out locally either way.
    } finally {
      this.expired = false;
      this.locked = null;
      this.forget();
    }
  }

  /**
   * Locks after `minutes` without input: at once the page shows sign-in (over the same hash,
   * the name prefilled), and the server session is logged out with the token it had.
   */
  lock(minutes: number): void {
    const { token, user } = this;
    if (!user) return;
    this.locked = { username: user.username, minutes };
    this.expired = false;
    this.forget();
    if (token) {
      void call(api.POST('/api/auth/logout', { headers: { Authorization: `Bearer ${token}` } })).catch(() => {
        // Signed out here either way; the token also ends when it expires.
      });
    }
  }

  expire(): void {
    if (this.user) this.expired = true;
    this.forget();
  }
}

export const session = new Session();
