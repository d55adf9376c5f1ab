/** `flui cancel <app>`: stops the deploy in flight. */
import { cancel } from '../client/index.ts';
import { appOf, type Command, type Context, type Input } from './command.ts';
import { EXIT, UsageError } from './exit.ts';
import { print } from './output.ts';

export interface CancelOptions {
  app: string;
  namespace: string;
  /** Why; the deploy then fails with it instead of ending Cancelled. */
  reason?: string;
}

export function parse(input: Input): CancelOptions {
  if (input.reason !== undefined && (input.reason.trim() === '' || input.reason.length > 500))
    throw new UsageError('--reason must be 1 to 500 characters');
  return { ...appOf(input), reason: input.reason };
}

export async function run(o: CancelOptions & Context): Promise<number> {
  const s = await cancel(await o.client(), o.namespace, o.app, o.reason);
  print(
    o.io,
    o.json,
    { action: 'cancel', deployId: s.deployId, namespace: o.namespace, app: o.app, phase: s.phase },
    () => `cancel requested for deploy ${s.deployId} (was ${s.phase})\n`,
  );
  return EXIT.ok;
}

export const command: Command<CancelOptions> = { parse, run };
