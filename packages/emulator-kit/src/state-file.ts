/**
 * An emulator's state on disk: the whole state as JSON, written to a temp file and renamed over the old one, so what
 * the emulator acknowledged survives a restart. After `close()` nothing is written any more: a build still finishing
 * in a stopped emulator cannot overwrite what a new emulator on the same data dir wrote.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export class StateFile<State> {
  readonly #file: string | undefined;
  #closed = false;

  /** No file without a data dir: the state then lives in memory only. */
  constructor(dataDir: string | undefined, name: string) {
    this.#file = dataDir ? join(dataDir, name) : undefined;
    if (dataDir) mkdirSync(dataDir, { recursive: true });
  }

  /** The saved state; undefined for no data dir or a fresh one; `onUnreadable` says what to do with a bad file. */
  load(onUnreadable: (file: string, err: Error) => void): State | undefined {
    if (!this.#file) return undefined;
    try {
      return JSON.parse(readFileSync(this.#file, 'utf8')) as State;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') onUnreadable(this.#file, err as Error);
      return undefined;
    }
  }

  save(state: State): void {
    if (!this.#file || this.#closed) return;
    const tmp = `${this.#file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(state));
    renameSync(tmp, this.#file);
  }

  close(): void {
    this.#closed = true;
  }
}

/** Git's blob id: SHA-1 over `blob <size>\0` and the content. */
export function gitBlobId(content: Buffer): string {
  return createHash('sha1').update(`blob ${content.length}\0`).update(content).digest('hex');
}
