/** `flui status <app>`: the current or last deploy of the app. */
import { status } from '../client/index.ts';
import { buildProgress, formatBuildProgress } from '../client/build-progress.ts';
import { isTerminal } from '../workflows/contract.ts';
import { appOf, type Command, type Context, type Input } from './command.ts';
import { EXIT } from './exit.ts';
import { formatStatus, print } from './output.ts';

export interface StatusOptions {
  app: string;
  namespace: string;
}

export function parse(input: Input): StatusOptions {
  return appOf(input);
}

export async function run(o: StatusOptions & Context): Promise<number> {
  const s = await status(await o.client(), o.namespace, o.app);
  if (s.source === 'recorded' && !isTerminal(s.phase)) {
    o.io.err(
      `flui status: no worker answered; this is the state recorded at the deploy's last phase change. Is a Flui worker running (npm run worker) on task queue ${o.config.temporal.taskQueue}?\n`,
    );
  }
  // A self-hosted build shows whether a builder has it (the deploy itself only knows it is building).
  const build =
    s.phase === 'building' && s.ciRun
      ? await buildProgress(await o.client(), s.ciRun.id).catch(() => undefined)
      : undefined;
  print(o.io, o.json, build ? { ...s, build } : s, () => formatStatus(s) + (build ? formatBuildProgress(build) : ''));
  return EXIT.ok;
}

export const command: Command<StatusOptions> = { parse, run };
