/**
 * `flui logs <app>`: the build's own log, as the CI keeps it, read by the worker (the CLI holds no CI credential).
 * Without --follow it prints what the CI has now; with it, it goes on until the run ends. The log goes to stdout and
 * only the log: which deploy and run it is from goes to stderr.
 *
 * --json: without --follow, one object (the build, `text`, `done`); with it, one object per line: `{"event":"build",
 * …}`, then `{"event":"log","text":…}` per piece as it comes, then `{"event":"end","done":…}`.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Client } from '@temporalio/client';
import { buildLog, listBuilds, logs, type BuildLogs } from '../client/index.ts';
import { isSettled } from '../workflows/contract.ts';
import { appOf, countOf, type Command, type Context, type Input } from './command.ts';
import { EXIT } from './exit.ts';
import { nsFlag, print, shortSha } from './output.ts';

export interface LogsOptions {
  app: string;
  namespace: string;
  /** The N-th newest deploy that ran CI (1 = newest). */
  build: number;
  follow: boolean;
  /** Between reads that found nothing new, while following (tests shorten it). */
  intervalMs?: number;
}

export function parse(input: Input): LogsOptions {
  const build = countOf(input.build, 1, '--build must be a whole number from 1 (the newest) to 1000');
  return { ...appOf(input), build, follow: input.follow };
}

/** Between checks for the CI run of a deploy that has not started one yet. */
const WAIT_MS = 1500;

const describe = (l: BuildLogs) =>
  `CI run of deploy ${l.deployId} (${l.phase}, commit ${shortSha(l.commit)}): ${l.logsUrl}\n`;

/**
 * The build to read. Following the newest build of an app whose deploy has not started its CI run yet (`flui deploy`
 * then `flui logs --follow` at once) waits for that run rather than reading the previous build's log.
 */
async function findBuild(o: LogsOptions & Context, client: Client): Promise<BuildLogs> {
  let said = false;
  for (;;) {
    const [latest] = o.follow && o.build === 1 ? await listBuilds(client, o.namespace, o.app, 1) : [];
    if (!latest || latest.ciRun || latest.kind !== 'Application' || isSettled(latest.phase)) {
      return logs(client, o.namespace, o.app, o.build);
    }
    if (!said) o.io.err(`waiting for deploy ${latest.deployId} (${latest.phase}) to start its CI run…\n`);
    said = true;
    await sleep(o.intervalMs ?? WAIT_MS);
  }
}

export async function run(o: LogsOptions & Context): Promise<number> {
  const client = await o.client();
  const line = (value: unknown) => o.io.out(`${JSON.stringify(value)}\n`);
  let reading: string | undefined;
  const interrupted = () => {
    if (o.json) line({ event: 'end', done: false, interrupted: true });
    const what = reading ? `reading the log of ${reading}` : 'waiting for the CI run';
    o.io.err(`stopped ${what}; the build goes on: flui logs ${o.app}${nsFlag(o.namespace)}\n`);
    process.exit(EXIT.interrupted);
  };
  if (o.follow) process.once('SIGINT', interrupted);
  try {
    const build = await findBuild(o, client);
    reading = build.deployId;
    if (o.json && o.follow) line({ event: 'build', ...build });
    else if (!o.json) o.io.err(describe(build));

    let done = false;
    let text = '';
    const chunks = buildLog(client, build, {
      follow: o.follow,
      taskQueue: o.config.temporal.taskQueue,
      ...(o.intervalMs !== undefined ? { intervalMs: o.intervalMs } : {}),
    });
    let printedAny = false;
    for await (const chunk of chunks) {
      done = chunk.done;
      printedAny ||= chunk.text !== '';
      if (!o.json) o.io.out(chunk.text);
      else if (o.follow) {
        if (chunk.text) line({ event: 'log', text: chunk.text });
      } else text += chunk.text;
    }
    if (!o.json && !done && !printedAny) {
      o.io.err(
        `no log text for this build yet; follow it as it comes: flui logs ${o.app}${nsFlag(o.namespace)} --follow\n`,
      );
    }
    if (o.json && o.follow) line({ event: 'end', done });
    else if (o.json) print(o.io, true, { ...build, text, done }, () => '');
    return EXIT.ok;
  } finally {
    if (o.follow) process.off('SIGINT', interrupted);
  }
}

export const command: Command<LogsOptions> = { parse, run };
