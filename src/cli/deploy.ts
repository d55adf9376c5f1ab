/** `flui deploy <manifest.yaml>`: starts a deploy of the app the manifest describes. */
import { startDeploy } from '../client/index.ts';
import { loadManifest } from '../manifest/parse.ts';
import type { DeployPolicy } from '../manifest/schema.ts';
import { namespaceOf, type Command, type Context, type Input } from './command.ts';
import { EXIT, UsageError } from './exit.ts';
import { nsFlag, print } from './output.ts';
import { followDeploy, Progress } from './progress.ts';
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
  if (o.follow) {
    const progress = new Progress(o.io, o.json);
    progress.started(started, `deploy of ${namespace}/${app}`);
    return followDeploy(client, started.deployId, progress);
  }
  print(o.io, o.json, started, () => {
    const lines = [`deploy ${started.deployId} started for ${namespace}/${app}`];
    if (started.webUiUrl) lines.push(`Web UI: ${started.webUiUrl}`);
    lines.push(`Follow it: flui status ${app}${nsFlag(namespace)}`);
    return lines.join('\n') + '\n';
  });
  return EXIT.ok;
}

export const command: Command<DeployOptions> = { parse, run };
