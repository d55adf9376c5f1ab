/**
 * The request-level faults both emulators inject the same way, deterministically (counts and time windows, never
 * chance): an outage, latency, lost or duplicated webhooks and a corrupted response. Each emulator's `FaultState`
 * extends this with the faults only its service has.
 */

type Mutation<Body> = { method?: string; mutate: (body: Body) => unknown };

export interface OutageOptions<Mode extends string> {
  mode?: Mode;
  forMs?: number;
  requests?: number;
}

export class BaseFaultState<Mode extends string, Body> {
  #outage: { mode: Mode; until: number; requests: number } | undefined;
  latencyMs = 0;
  #drop = 0;
  #duplicate = 0;
  readonly #corrupt = new Map<string, Mutation<Body>>();
  readonly #defaultMode: Mode;

  constructor(defaultMode: Mode) {
    this.#defaultMode = defaultMode;
  }

  /** From now for `forMs`, or for the next `requests` requests (default: one hour); replaces an earlier outage. */
  setOutage(opts: OutageOptions<Mode> = {}): void {
    const byCount = opts.requests !== undefined && opts.forMs === undefined;
    this.#outage = {
      mode: opts.mode ?? this.#defaultMode,
      until: byCount ? Infinity : Date.now() + (opts.forMs ?? 3600_000),
      requests: byCount ? opts.requests! : Infinity,
    };
  }

  /** How this request fails in an outage, if it does. */
  takeOutage(): Mode | undefined {
    const o = this.#outage;
    if (!o) return undefined;
    if (Date.now() >= o.until || o.requests <= 0) {
      this.#outage = undefined;
      return undefined;
    }
    o.requests--;
    return o.mode;
  }

  setWebhooks(drop = 0, duplicate = 0): void {
    this.#drop = drop;
    this.#duplicate = duplicate;
  }

  /** How many times to deliver the next webhook: 0 (lost), 1 or 2 (delivered again). */
  takeWebhook(): number {
    if (this.#drop > 0) {
      this.#drop--;
      return 0;
    }
    if (this.#duplicate > 0) {
      this.#duplicate--;
      return 2;
    }
    return 1;
  }

  corrupt(operation: string, mutate: Mutation<Body>['mutate'], method?: string): void {
    this.#corrupt.set(operation, { method: method?.toUpperCase(), mutate });
  }

  takeCorruption(method: string, operation: string): Mutation<Body>['mutate'] | undefined {
    const c = this.#corrupt.get(operation);
    if (!c || (c.method && c.method !== method)) return undefined;
    this.#corrupt.delete(operation);
    return c.mutate;
  }

  /** The `Faults` methods that act on this state alone, for an emulator's `faults` object. */
  controls() {
    return {
      outage: (opts?: OutageOptions<Mode>) => this.setOutage(opts),
      latency: (ms: number) => void (this.latencyMs = Math.max(0, ms)),
      webhooks: ({ drop, duplicate }: { drop?: number; duplicate?: number }) => this.setWebhooks(drop, duplicate),
      corruptNextResponse: (operation: string, mutate: (body: Body) => unknown, method?: string) =>
        this.corrupt(operation, mutate, method),
    };
  }

  reset(): void {
    this.#outage = undefined;
    this.latencyMs = 0;
    this.#drop = 0;
    this.#duplicate = 0;
    this.#corrupt.clear();
  }
}
