/** `flui deploy <manifest.yaml>`: starts a deploy of the app the manifest describes. */
import { startDeploy } from '../client/index.ts';
import { loadManifest } from '../manifest/parse.ts';
import type { DeployPolicy } from '../manifest/schema.ts';
import { namespaceOf, type Command, type Context, type Input } from './command.ts';
import { UsageError } from './exit.ts';
import { reportStarted } from './progress.ts';
import { webUi } from './web-ui.ts';

export interface DeployOptions {
  manifestPath: string;
  /** Must match the manifest's metadata.namespace when given. */
  namespace?: string;
  /** Overrides the manifest's deploy.policy. */
  policy?: DeployPolicy;
  follow: boolean;
}

export function parse(input: Input): DeployOptions {
  if (input.policy !== undefined && input.policy !== 'supersede' && input.policy !== 'queue')
    throw new UsageError(`--policy must be supersede or queue, not "${input.policy}"`);
  return { manifestPath: input.target, namespace: namespaceOf(input), policy: input.policy, follow: input.follow };
}

export async function run(o: DeployOptions & Context): Promise<number> {
  // An invalid manifest throws a ManifestError naming file, line and field: nothing is started.
  const manifest = await loadManifest(o.manifestPath);
  const { namespace, name: app } = manifest.metadata;
  if (o.namespace && o.namespace !== namespace)
    throw new UsageError(`--namespace ${o.namespace} differs from the manifest's metadata.namespace (${namespace})`);
  const client = await o.client();
  const started = await startDeploy(client, manifest, {
    taskQueue: o.config.temporal.taskQueue,
    requestedBy: o.requestedBy,
    webUi: webUi(o.config),
    policy: o.policy,
  });
  return reportStarted(o, client, started, 'deploy', { namespace, app });
}

export const command: Command<DeployOptions> = { parse, run };
