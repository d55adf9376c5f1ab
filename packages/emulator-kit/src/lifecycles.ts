/**
 * A runner's bookkeeping of the work it has scheduled (runs, pipelines): per id, its pending timers and the abort of
 * its build, and which ids hold a runner slot; released one by one when work ends, all at once when the emulator
 * stops (and nothing starts any more).
 */

export interface Lifecycle {
  timers: NodeJS.Timeout[];
  abort: AbortController;
}

export class Lifecycles {
  readonly #running = new Set<number>();
  readonly #active = new Map<number, Lifecycle>();
  #stopped = false;

  get stopped(): boolean {
    return this.#stopped;
  }

  /** A new lifecycle for `id`, replacing (and releasing) any earlier one. */
  begin(id: number): Lifecycle {
    this.release(id);
    const active = { timers: [] as NodeJS.Timeout[], abort: new AbortController() };
    this.#active.set(id, active);
    return active;
  }

  /** The lifecycle of `id`, while it has one. */
  get(id: number): Lifecycle | undefined {
    return this.#active.get(id);
  }

  /** How many ids hold a runner slot. */
  get running(): number {
    return this.#running.size;
  }

  /** `id` takes a runner slot (until it is released). */
  run(id: number): void {
    this.#running.add(id);
  }

  /** Frees `id`'s slot, clears its timers and aborts its build. */
  release(id: number): void {
    this.#running.delete(id);
    const active = this.#active.get(id);
    if (!active) return;
    for (const t of active.timers) clearTimeout(t);
    active.abort.abort();
    this.#active.delete(id);
  }

  stop(): void {
    this.#stopped = true;
    for (const id of [...this.#active.keys()]) this.release(id);
  }
}
