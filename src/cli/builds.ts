/** `flui builds <app>`: past deploys, newest first. */
import { listBuilds } from '../client/index.ts';
import { appOf, countOf, type Command, type Context, type Input } from './command.ts';
import { EXIT } from './exit.ts';
import { formatBuilds, print } from './output.ts';

export interface BuildsOptions {
  app: string;
  namespace: string;
  limit: number;
}

export function parse(input: Input): BuildsOptions {
  const limit = countOf(input.limit, 20, '--limit must be a whole number from 1 to 1000');
  return { ...appOf(input), limit };
}

export async function run(o: BuildsOptions & Context): Promise<number> {
  const builds = await listBuilds(await o.client(), o.namespace, o.app, o.limit);
  print(o.io, o.json, builds, () =>
    builds.length ? formatBuilds(builds) : `no deploys of ${o.namespace}/${o.app} yet\n`,
  );
  return EXIT.ok;
}

export const command: Command<BuildsOptions> = { parse, run };
