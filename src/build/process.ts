/**
 * Runs one command of a build: in its own process group, output line by line into the build's log, and on abort
 * (cancel or timeout) the whole group and everything in the build's namespaces killed at once.
 */
import { spawn } from 'node:child_process';
import type { BuildLog } from './logs.ts';
import type { Sandbox } from './sandbox.ts';

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  log?: BuildLog;
  signal?: AbortSignal;
  sandbox?: Sandbox;
  /** Run inside the sandbox; `network: false` also in its network-less namespace. */
  inSandbox?: { network: boolean };
  /** Text for stdin (never a secret in argv). */
  input?: string;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  aborted: boolean;
}

export class Aborted extends Error {
  constructor(reason: unknown) {
    super(reason instanceof Error ? reason.message : 'the build was cancelled');
    this.name = 'AbortError';
  }
}

const MAX_CAPTURE = 1 << 20;

export function runCommand(command: string, argv: string[], opts: RunOptions = {}): Promise<RunResult> {
  const { cmd, args } =
    opts.sandbox && opts.inSandbox
      ? opts.sandbox.wrap(command, argv, opts.inSandbox.network)
      : { cmd: command, args: argv };
  return new Promise((resolve, reject) => {
    if (opts.signal?.aborted) return reject(new Aborted(opts.signal.reason));
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      // Its own process group: a cancel kills the group, not just the direct child.
      detached: true,
    });
    let stdout = '';
    let aborted = false;
    const out = opts.log?.writer();
    const err = opts.log?.writer();
    child.stdout!.on('data', (d: Buffer) => {
      if (stdout.length < MAX_CAPTURE) stdout += d.toString();
      out?.write(d);
    });
    child.stderr!.on('data', (d: Buffer) => err?.write(d));
    if (opts.input !== undefined) child.stdin!.end(opts.input);
    const kill = () => {
      aborted = true;
      if (child.pid !== undefined) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          // the group is gone already
        }
      }
      opts.sandbox?.killAll();
    };
    opts.signal?.addEventListener('abort', kill, { once: true });
    child.on('error', (e) => {
      opts.signal?.removeEventListener('abort', kill);
      reject(e);
    });
    child.on('close', (code, signal) => {
      opts.signal?.removeEventListener('abort', kill);
      out?.flush();
      err?.flush();
      // Whatever the group left behind (a RUN step that made its own session) goes too.
      if (child.pid !== undefined) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          // nothing left
        }
      }
      if (aborted) return reject(new Aborted(opts.signal?.reason));
      resolve({ code, signal, stdout, aborted });
    });
  });
}
