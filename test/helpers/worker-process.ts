/**
 * The Flui worker as its own process, launched exactly as `npm run worker` does (the command line is read from
 * package.json, V8 heap flags included, so it runs the build in dist/, brought up to date first), so a test can
 * SIGKILL it the way an OOM kill or a lost machine would, and start the next one. Started and stopped like every
 * other local server (dev/process.ts).
 */
import { readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, startServerProcess } from '../../dev/process.ts';
import { ensureBuilt } from './build.ts';
import { workerWorkflowBundle } from './temporal.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const READY = /Flui worker polling task queue/;

/** `npm run worker`'s arguments after `node`, with its shell defaults (`${VAR:-default}`) filled in from `env`. */
export function workerArgs(env: Record<string, string | undefined>): string[] {
  const script = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: { worker: string } })
    .scripts.worker;
  const [node, ...args] = script
    .replace(/\$\{(\w+):-([^}]*)\}/g, (_, name: string, fallback: string) => env[name] || fallback)
    .split(/\s+/);
  if (node !== 'node') throw new Error(`package.json's worker script should start with node: ${script}`);
  return args;
}

export interface WorkerProcess {
  readonly pid: number;
  /** Its ops server (/livez, /readyz, /metrics): FLUI_OPS_PORT from `env`, or a free port of its own. */
  readonly opsUrl: string;
  /** SIGKILL: no drain, no goodbye. Resolves once the process is gone. */
  kill(): Promise<void>;
  /** SIGTERM (a graceful shutdown). */
  stop(): Promise<void>;
}

/** Writes the workflow bundle once to `dir` so each worker process starts without webpack. */
export async function writeBundleFile(dir: string): Promise<string> {
  const file = join(dir, 'workflow-bundle.js');
  await writeFile(file, (await workerWorkflowBundle()).code);
  return file;
}

/**
 * Starts a worker with `env` (a stack's worker environment) and resolves once it polls its task queue. With
 * `bundleFile: null` it bundles its workflow code at start, as `npm run worker` does without FLUI_WORKFLOW_BUNDLE.
 */
export async function startWorkerProcess(
  env: Record<string, string>,
  opts: { bundleFile: string | null; logFile: string; timeoutMs?: number },
): Promise<WorkerProcess> {
  await ensureBuilt();
  // Each process its own ops port unless the caller chose one: processes started from one stack's env would collide.
  const opsPort = env.FLUI_OPS_PORT ?? String(await freePort());
  const proc = await startServerProcess({
    name: 'flui worker',
    command: process.execPath,
    args: workerArgs(env),
    cwd: ROOT,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      ...env,
      FLUI_OPS_PORT: opsPort,
      ...(opts.bundleFile ? { FLUI_WORKFLOW_BUNDLE: opts.bundleFile } : {}),
    },
    logFile: opts.logFile,
    ready: async () => READY.test(await readFile(opts.logFile, 'utf8')),
    timeoutMs: opts.timeoutMs,
  });
  return {
    pid: proc.child.pid!,
    opsUrl: `http://127.0.0.1:${opsPort}`,
    async kill() {
      proc.child.kill('SIGKILL');
      await proc.stop(); // waits for the exit
    },
    stop: () => proc.stop(),
  };
}
