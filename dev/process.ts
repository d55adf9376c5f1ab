/**
 * Running local servers as child processes: free ports, logs in a file, a readiness probe with a deadline, and a
 * stop that escalates from SIGTERM to SIGKILL. Shared by the local sandbox and the test helpers.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import { mkdtemp, readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** The kernel's ephemeral range: the ports it hands to `connect()` and to `listen(0)`. */
function ephemeralRange(): [number, number] {
  try {
    const [low = 0, high = 0] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')
      .trim()
      .split(/\s+/)
      .map(Number);
    if (low > 0 && high >= low) return [low, high];
  } catch {
    // not Linux: the IANA dynamic range
  }
  return [49152, 65535];
}

const handedOut = new Set<number>();

/** Resolves whether `port` can be bound on `host` right now. */
function bindable(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen({ port, host, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

/**
 * A port free on `host` right now, for a server started next. It lies below the kernel's ephemeral range, so no
 * outgoing connection or `listen(0)` can take it in the gap between this check and the server's own bind (a port
 * from `listen(0)` could be, and a restarted worker once lost its ops port that way); and this process never hands
 * out the same port twice.
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const [ephemeralLow] = ephemeralRange();
  const low = 20_000;
  const high = Math.max(low + 1_000, ephemeralLow) - 1;
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = low + Math.floor(Math.random() * (high - low + 1));
    if (handedOut.has(port)) continue;
    if (await bindable(port, host)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`no free port on ${host} between ${low} and ${high}`);
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
