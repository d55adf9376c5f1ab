/**
 * The Flui worker as its own process (`node --import tsx src/worker.ts`, exactly what `npm run worker` runs), so a
 * test can SIGKILL it the way an OOM kill or a lost machine would, and start the next one.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { workflowBundle } from './temporal.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const READY = /Flui worker polling task queue/;

export interface WorkerProcess {
  readonly pid: number;
  /** SIGKILL: no drain, no goodbye. Resolves once the process is gone. */
  kill(): Promise<void>;
  /** SIGTERM (a graceful shutdown). */
  stop(): Promise<void>;
}

/** Writes the workflow bundle once to `dir` so each worker process starts without webpack. */
export async function writeBundleFile(dir: string): Promise<string> {
  const file = join(dir, 'workflow-bundle.js');
  await writeFile(file, (await workflowBundle('src/workflows/index.ts')).code);
  return file;
}

/** Starts a worker with `env` (a stack's worker environment) and resolves once it polls its task queue. */
export async function startWorkerProcess(
  env: Record<string, string>,
  opts: { bundleFile: string; logFile: string; timeoutMs?: number },
): Promise<WorkerProcess> {
  const log = createWriteStream(opts.logFile, { flags: 'a' });
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'src/worker.ts'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env, FLUI_WORKFLOW_BUNDLE: opts.bundleFile },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  exited.then(() => log.end()).catch(() => undefined);
  child.stdout!.pipe(log, { end: false });
  child.stderr!.pipe(log, { end: false });

  let output = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`worker not ready after ${opts.timeoutMs ?? 30_000} ms:\n${output.slice(-2000)}`));
    }, opts.timeoutMs ?? 30_000);
    child.stderr!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (READY.test(output)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`worker exited during start-up (code ${code}, signal ${signal}):\n${output.slice(-2000)}`));
    });
  });

  return {
    pid: child.pid!,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
