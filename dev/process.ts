/**
 * Running local servers as child processes: free ports, logs in a file, a readiness probe with a deadline, and a
 * stop that escalates from SIGTERM to SIGKILL. Shared by the local sandbox and the test helpers.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdtemp, readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** A port the OS says is free on `host` right now. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

export async function makeTempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `flui-${prefix}-`));
}

export interface ServerProcess {
  readonly name: string;
  readonly child: ChildProcess;
  readonly logFile: string;
  /** Last lines of the log, for error messages. */
  tail(lines?: number): Promise<string>;
  /** SIGTERM, then SIGKILL after `graceMs`. Resolves when the process is gone. */
  stop(graceMs?: number): Promise<void>;
}

export interface StartOptions {
  name: string;
  command: string;
  args: string[];
  logFile: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Resolves true once the server serves; polled until `timeoutMs`. */
  ready: () => Promise<boolean>;
  timeoutMs?: number;
}

/** Starts a server and waits for it to be ready; on failure the error carries the log's tail. */
export async function startServerProcess(opts: StartOptions): Promise<ServerProcess> {
  const log = createWriteStream(opts.logFile, { flags: 'a' });
  const child = spawn(opts.command, opts.args, {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.pipe(log, { end: false });
  child.stderr?.pipe(log, { end: false });
  let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exitPromise = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exited = { code, signal };
      resolve();
    });
    child.once('error', (err) => {
      exited = { code: null, signal: null };
      log.write(`spawn error: ${err.message}\n`);
      resolve();
    });
  });

  const proc: ServerProcess = {
    name: opts.name,
    child,
    logFile: opts.logFile,
    async tail(lines = 20) {
      const text = await readFile(opts.logFile, 'utf8').catch(() => '');
      return text.trimEnd().split('\n').slice(-lines).join('\n');
    },
    async stop(graceMs = 5000) {
      if (!exited) {
        child.kill('SIGTERM');
        const killed = await Promise.race([exitPromise.then(() => true), sleep(graceMs).then(() => false)]);
        if (!killed) {
          child.kill('SIGKILL');
          await exitPromise;
        }
      }
      await new Promise<void>((resolve) => log.end(resolve));
    },
  };

  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  for (;;) {
    if (exited) {
      throw new Error(
        `${opts.name} exited during start-up (code ${exited.code}, signal ${exited.signal}); log ${opts.logFile}:\n${await proc.tail()}`,
      );
    }
    if (await opts.ready().catch(() => false)) return proc;
    if (Date.now() > deadline) {
      await proc.stop(1000);
      throw new Error(
        `${opts.name} was not ready after ${opts.timeoutMs ?? 30_000} ms; log ${opts.logFile}:\n${await proc.tail()}`,
      );
    }
    await sleep(100);
  }
}

/** True when an HTTP GET of `url` answers with any status (the server is up). */
export async function httpAnswers(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
    await res.body?.cancel();
    return true;
  } catch {
    return false;
  }
}
