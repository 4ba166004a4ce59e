// The delivery state every screen shows in its badge: `GET /api/sync`, polled without overlap.
import { api, call } from '../api/client';
import type { SyncStatus } from '../api/types';
import { ApiFailure } from '../errors';
import { createPoller, type Poller } from '../poller';
import type { Link } from '../sync-label';

class Sync {
  status = $state<SyncStatus | null>(null);
  /** The server itself could not be reached. */
  unreachable = $state(false);
  /** The server answers but has no sync route (older backend). */
  unsupported = $state(false);
  /** The desktop's backend is starting or quitting (503 `starting`). */
  starting = $state(false);
  checkedAt = $state<number | null>(null);
  private poller: Poller | null = null;

  start(): void {
    if (this.poller) return;
    this.poller = createPoller({
      interval: 3000,
      hiddenInterval: 30000,
      task: async (signal) => {
        try {
          const answer = await call(api.GET('/api/sync', { signal }));
          this.status = answer.sync;
          this.unreachable = false;
          this.unsupported = false;
          this.starting = false;
        } catch (error) {
          this.starting = error instanceof ApiFailure && error.code === 'starting';
          if (this.starting) return;
          if (error instanceof ApiFailure && error.code === 'network') this.unreachable = true;
          else if (error instanceof ApiFailure && error.code === 'not_found') this.unsupported = true;
          else throw error;
        } finally {
          this.checkedAt = Date.now();
        }
      },
    });
    this.poller.start();
  }

  /** How the server itself answers, for the badge. */
  get link(): Link {
    if (this.unreachable) return 'unreachable';
    if (this.starting) return 'starting';
    return this.unsupported ? 'unsupported' : 'ok';
  }

  poke(): void {
    this.poller?.poke();
  }

  stop(): void {
    this.poller?.stop();
    this.poller = null;
    this.status = null;
  }
}

export const sync = new Sync();
