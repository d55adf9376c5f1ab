/** Polls `probe` until it returns a value (not undefined) or `timeoutMs` passes. For waiting on servers' state. */
import { setTimeout as sleep } from 'node:timers/promises';

export async function pollUntil<T>(
  probe: () => Promise<T | undefined> | T | undefined,
  opts: { what: string; timeoutMs: number; intervalMs: number },
): Promise<T> {
  const deadline = Date.now() + opts.timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${opts.timeoutMs} ms waiting for ${opts.what}`);
    await sleep(opts.intervalMs);
  }
}
