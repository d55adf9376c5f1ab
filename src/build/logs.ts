/**
 * The build's output, line by line: every line goes to the caller's `onLog` with credentials blanked out, and the
 * last lines are kept for results and errors.
 */

/** How many lines a log tail keeps. */
export const TAIL_LINES = 20;
const MAX_LINE = 4096;

export class BuildLog {
  readonly #secrets: string[];
  readonly #onLog: ((line: string) => void) | undefined;
  readonly #tail: string[] = [];
  /** Lines buildah reported as taken from its cache (`--> Using cache …`). */
  cachedSteps = 0;

  constructor(secrets: Iterable<string>, onLog?: (line: string) => void) {
    // Each secret as given and in the forms it travels in (base64 `user:pass` is added by the caller).
    this.#secrets = [...new Set([...secrets].filter((s) => s.length >= 4))].sort((a, b) => b.length - a.length);
    this.#onLog = onLog;
  }

  /** Adds one line (without its newline). */
  line(raw: string): void {
    let line = raw.length > MAX_LINE ? `${raw.slice(0, MAX_LINE)}…` : raw;
    line = redact(line, this.#secrets);
    if (/^--> Using cache /.test(line)) this.cachedSteps++;
    this.#tail.push(line);
    if (this.#tail.length > TAIL_LINES) this.#tail.shift();
    try {
      this.#onLog?.(line);
    } catch {
      // A failing log consumer must not fail the build.
    }
  }

  /** A writer for a stream of text chunks: splits lines (CR or LF), keeps the partial last line until `flush`. */
  writer(): { write(chunk: Buffer | string): void; flush(): void } {
    let partial = '';
    return {
      write: (chunk) => {
        const parts = (partial + chunk.toString()).split(/\r?\n|\r/);
        partial = parts.pop() ?? '';
        for (const p of parts) this.line(p);
      },
      flush: () => {
        if (partial) this.line(partial);
        partial = '';
      },
    };
  }

  tail(): string {
    return this.#tail.join('\n');
  }
}

/** `text` with every occurrence of each secret replaced by `***`. */
export function redact(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) if (s && out.includes(s)) out = out.split(s).join('***');
  return out;
}
