/** `flui logs <app>`: where a build's logs are (its CI run's page). */
import { logs } from '../client/index.ts';
import { appOf, countOf, type Command, type Context, type Input } from './command.ts';
import { EXIT } from './exit.ts';
import { print, shortSha } from './output.ts';

export interface LogsOptions {
  app: string;
  namespace: string;
  /** The N-th newest deploy that ran CI (1 = newest). */
  build: number;
}

export function parse(input: Input): LogsOptions {
  const build = countOf(input.build, 1, '--build must be a whole number from 1 (the newest) to 1000');
  return { ...appOf(input), build };
}

export async function run(o: LogsOptions & Context): Promise<number> {
  const l = await logs(await o.client(), o.namespace, o.app, o.build);
  print(
    o.io,
    o.json,
    l,
    () => `CI run of deploy ${l.deployId} (${l.phase}, commit ${shortSha(l.commit)}):\n${l.logsUrl}\n`,
  );
  return EXIT.ok;
}

export const command: Command<LogsOptions> = { parse, run };
