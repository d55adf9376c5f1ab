/**
 * All activities of the deploy workflow, built from the worker's configuration. Credentials stay in this closure:
 * the workflow only ever sees plain, non-secret inputs and results. What the adapters throw becomes a Temporal
 * failure here, once for all of them (src/activities/failures.ts), after each input was admitted to the worker's lanes
 * (src/activities/admission.ts).
 */
import { Context } from '@temporalio/activity';
import { createCiBackend } from '../ci/index.ts';
import type { Config } from '../config.ts';
import type { PullCredential } from '../kube/pull-secret.ts';
import { authFor } from '../registry/auths.ts';
import { imageHost } from '../registry/reference.ts';
import { withAdmission } from './admission.ts';
import { createCiActivities } from './ci.ts';
import { withActivityFailures } from './failures.ts';
import { createKubernetesActivities } from './kubernetes.ts';
import { createLogActivities, type LogActivities } from './logs.ts';
import { createRegistryActivities } from './registry.ts';
import type { DeployActivities } from './types.ts';

export function createActivities(config: Config): DeployActivities & LogActivities {
  // One backend for all: its conditional-request cache serves the deploys' polls and `flui logs` alike. The
  // self-hosted backend starts builds with the worker's own Temporal client.
  const ci = createCiBackend(config, { temporalClient: () => Context.current().client });
  return withActivityFailures(
    // Lanes first: a manifest outside them is refused before any activity writes anything anywhere.
    withAdmission(config.lanes, {
      ...createCiActivities(ci, config),
      ...createLogActivities(ci, config.lanes),
      ...createRegistryActivities(config),
      ...createKubernetesActivities({ kubeconfig: config.kubeconfig, pullCredential: pullCredentials(config) }),
    }),
  );
}

/**
 * The pull credential for an image whose registry is one of FLUI_PULL_SECRET_REGISTRIES: the worker's credential for
 * that very host (never another's), or none.
 */
function pullCredentials(config: Config): (image: string) => PullCredential | undefined {
  const hosts = new Set(config.build.pullSecretRegistries);
  return (image) => {
    const registry = imageHost(image);
    if (!hosts.has(registry.toLowerCase())) return undefined;
    const auth = authFor(config.registry.auths, registry);
    return auth && { registry, username: auth.username, password: auth.password };
  };
}
