/**
 * `flui-builder` as its own process, for the sandbox and the tests that kill builders: from the build in dist/ exactly
 * as `npm run builder` runs it (its command line read from package.json), or from the sources under tsx (the
 * sandbox, which runs from sources throughout). Started and stopped like every other local server (dev/process.ts).
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServerProcess, type ServerProcess } from './process.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const READY = /Flui builder polling task queue/;

/** `npm run builder`'s arguments after `node`, with its shell defaults (`${VAR:-default}`) filled in from `env`. */
export function builderArgs(env: Record<string, string | undefined>): string[] {
  const script = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: { builder: string } })
    .scripts.builder;
  const [node, ...args] = script
    .replace(/\$\{(\w+):-([^}]*)\}/g, (_, name: string, fallback: string) => env[name] || fallback)
    .split(/\s+/);
  if (node !== 'node') throw new Error(`package.json's builder script should start with node: ${script}`);
  return args;
}

export interface BuilderProcess {
  readonly pid: number;
  readonly process: ServerProcess;
  /** SIGKILL: no drain, no goodbye (what an OOM kill or a lost machine does). Resolves once the process is gone. */
  kill(): Promise<void>;
  /** SIGTERM: stops taking builds, lets running ones finish for a while. */
  stop(): Promise<void>;
}

/**
 * Starts a builder with `env` (a stack's worker environment: it needs the same Temporal, registry credentials and
 * FLUI_BUILD_* settings) and resolves once it polls the build task queue. `fromSources` runs src/builder.ts under tsx;
 * otherwise dist/builder.js, which must be built (`npm run build`).
 */
export async function startBuilderProcess(
  env: Record<string, string>,
  opts: { logFile: string; fromSources?: boolean; timeoutMs?: number },
): Promise<BuilderProcess> {
  const args = opts.fromSources ? ['--import', 'tsx', join(ROOT, 'src/builder.ts')] : builderArgs(env);
  const proc = await startServerProcess({
    name: 'flui builder',
    command: process.execPath,
    args,
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    logFile: opts.logFile,
    ready: async () => READY.test(await readFile(opts.logFile, 'utf8')),
    timeoutMs: opts.timeoutMs ?? 60_000,
  });
  return {
    pid: proc.child.pid!,
    process: proc,
    async kill() {
      proc.child.kill('SIGKILL');
      await proc.stop();
    },
    stop: () => proc.stop(35_000),
  };
}
