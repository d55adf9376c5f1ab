/** `flui rollback <app>`: rolls the app back to an earlier good image, through the deploy workflow. */
import { FluiError, listImages, rollback, type ImageListing } from '../client/index.ts';
import { appOf, type Command, type Context, type Input } from './command.ts';
import { UsageError } from './exit.ts';
import { nsFlag, shortDigest } from './output.ts';
import { reportStarted } from './progress.ts';
import { webUi } from './web-ui.ts';

export interface RollbackOptions {
  app: string;
  namespace: string;
  /** The digest to roll back to; the image before the current one when absent. */
  to?: string;
  follow: boolean;
}

/** How long the image history may take to read before the rollback goes ahead unchecked. */
const HISTORY_TIMEOUT_MS = 5000;

export function parse(input: Input): RollbackOptions {
  if (input.to !== undefined && !/^sha256:[a-f0-9]{64}$/.test(input.to))
    throw new UsageError('--to must be a digest, "sha256:" followed by 64 hex digits (see `flui images`)');
  return { ...appOf(input), to: input.to, follow: input.follow };
}

/**
 * The image the rollback would run, picked from the history as the worker picks it: the digest asked for, else the
 * newest good image other than the running one. Undefined when there is none.
 */
export function rollbackTarget(images: ImageListing[], to?: string): ImageListing | undefined {
  const good = images.filter((i) => i.outcome === 'succeeded');
  if (to) return good.find((i) => i.digest === to);
  const running = images.find((i) => i.current)?.image;
  return good.find((i) => i.image !== running);
}

export async function run(o: RollbackOptions & Context): Promise<number> {
  await checkTarget(o);
  const client = await o.client();
  const started = await rollback(client, o.namespace, o.app, {
    taskQueue: o.config.temporal.taskQueue,
    requestedBy: o.requestedBy,
    webUi: webUi(o.config),
    digest: o.to,
  });
  return reportStarted(o, client, started, 'rollback', o);
}

/**
 * A rollback with nothing to roll back to would start a deploy that fails a moment later: say so up front instead.
 * The worker checks again (the history may change in between). When this machine cannot read the cluster (the
 * worker can), the rollback goes ahead with a warning.
 */
async function checkTarget(o: RollbackOptions & Context): Promise<void> {
  let images: ImageListing[];
  try {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`no answer within ${HISTORY_TIMEOUT_MS / 1000} s`)),
        HISTORY_TIMEOUT_MS,
      );
    });
    images = await Promise.race([listImages(o.config.kubeconfig, o.namespace, o.app), timeout]).finally(() =>
      clearTimeout(timer),
    );
  } catch (err) {
    o.io.err(
      `flui rollback: could not check the image history (${(err as Error).message}); going ahead, the worker checks it\n`,
    );
    return;
  }
  if (rollbackTarget(images, o.to)) return;
  const good = [...new Set(images.filter((i) => i.outcome === 'succeeded').map((i) => shortDigest(i.digest)))];
  const seen = good.length ? `images that ran successfully: ${good.join(', ')}` : 'no image of it ran successfully yet';
  throw new FluiError(
    (o.to
      ? `${o.namespace}/${o.app} never ran ${o.to} successfully (${seen})`
      : `${o.namespace}/${o.app} has no earlier good image to roll back to (${seen})`) +
      `: nothing was started. See \`flui images ${o.app}${nsFlag(o.namespace)}\`.`,
  );
}

export const command: Command<RollbackOptions> = { parse, run };
