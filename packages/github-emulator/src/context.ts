/** What the route modules share: state, runner, bookkeeping, and the emulator's own URL. */
import type { Router } from './http.ts';
import type { Records } from './records.ts';
import type { Runner } from './runner.ts';
import type { Repo, Run, Store } from './store.ts';

export interface Emulation {
  store: Store;
  runner: Runner;
  records: Records;
  router: Router;
  /** The emulator's base URL (known once it listens). */
  api(): string;
  logs: LogLinks;
}

/**
 * Log archives are served from short-lived, unguessable URLs, as GitHub redirects to a signed storage URL that needs
 * no token. Archive links live five minutes, job log links one (as GitHub's).
 */
export class LogLinks {
  readonly #links = new Map<string, { repo: Repo; run: Run; expires: number }>();

  add(id: string, repo: Repo, run: Run, lifetimeMs = 300_000): void {
    const t = Date.now();
    for (const [k, v] of this.#links) if (v.expires < t) this.#links.delete(k);
    this.#links.set(id, { repo, run, expires: t + lifetimeMs });
  }

  get(id: string): { repo: Repo; run: Run } | undefined {
    const link = this.#links.get(id);
    return link && link.expires >= Date.now() ? link : undefined;
  }
}
