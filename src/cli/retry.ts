/** `flui retry <app>`: re-runs a failed deploy from the phase that failed. */
import { retry } from '../client/index.ts';
import { appOf, type Command, type Context, type Input } from './command.ts';
import { EXIT } from './exit.ts';
import { print } from './output.ts';
import { followDeploy, Progress } from './progress.ts';

export interface RetryOptions {
  app: string;
  namespace: string;
  follow: boolean;
}

export function parse(input: Input): RetryOptions {
  return { ...appOf(input), follow: input.follow };
}

export async function run(o: RetryOptions & Context): Promise<number> {
  const client = await o.client();
  const s = await retry(client, o.namespace, o.app);
  const what = `retrying deploy ${s.deployId} from ${s.failedPhase ?? 'the failed phase'}\n`;
  if (o.follow) {
    if (!o.json) o.io.out(what);
    // Statuses of the attempt being retried are skipped: the retry signal may not have landed yet.
    return followDeploy(client, s.deployId, new Progress(o.io, o.json), { fromAttempt: s.attempt + 1 });
  }
  print(
    o.io,
    o.json,
    {
      action: 'retry',
      deployId: s.deployId,
      namespace: o.namespace,
      app: o.app,
      failedPhase: s.failedPhase ?? null,
      attempt: s.attempt + 1,
    },
    () => what,
  );
  return EXIT.ok;
}

export const command: Command<RetryOptions> = { parse, run };
