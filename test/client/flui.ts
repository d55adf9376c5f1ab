/**
 * Runs the real `flui` command (bin/flui.js, which runs the build in dist/) as a child process, the way users and
 * scripts do, and keeps what it printed: a transcript file per suite whose path failed assertions name. Importing
 * this module brings dist/ up to date first.
 */
import { spawn } from 'node:child_process';
import { appendFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { ensureBuilt } from '../helpers/build.ts';

await ensureBuilt();

const BIN = fileURLToPath(new URL('../../bin/flui.js', import.meta.url));

export interface FluiRun {
  code: number;
  stdout: string;
  stderr: string;
  /** For assertion messages: the command and everything it printed. */
  transcript: string;
}

export interface RunningFlui {
  /** Resolves when the process exits. */
  done: Promise<FluiRun>;
  /** Output so far. */
  stdout(): string;
  /** Sends a signal, as a terminal does on Ctrl-C. */
  kill(signal: NodeJS.Signals): void;
}

/** Starts `flui args…` with `env` (added to a clean PATH/HOME environment), appending its transcript to `log`. */
export function startFlui(args: string[], env: Record<string, string>, log?: string): RunningFlui {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', USER: 'tester', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const done = new Promise<FluiRun>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', async (code) => {
      const transcript = `$ flui ${args.join(' ')}\n[exit ${code}]\n--- stdout\n${stdout}--- stderr\n${stderr}`;
      if (log) await appendFile(log, `${transcript}\n`).catch(() => undefined);
      resolve({ code: code ?? -1, stdout, stderr, transcript: log ? `${transcript}\n(all runs: ${log})` : transcript });
    });
  });
  return { done, stdout: () => stdout, kill: (signal) => void child.kill(signal) };
}

export function flui(args: string[], env: Record<string, string>, log?: string): Promise<FluiRun> {
  return startFlui(args, env, log).done;
}

/** stdout of a `--json` run, parsed; fails with the transcript when it is not one JSON document. */
export function json<T = unknown>(run: FluiRun): T {
  try {
    return JSON.parse(run.stdout) as T;
  } catch {
    throw new Error(`stdout is not JSON:\n${run.transcript}`);
  }
}

/** stdout of a `--follow --json` run: one JSON event per line. */
export function events<T = Record<string, unknown>>(run: FluiRun): T[] {
  return run.stdout
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      try {
        return JSON.parse(line) as T;
      } catch {
        throw new Error(`stdout line is not JSON: ${line}\n${run.transcript}`);
      }
    });
}
