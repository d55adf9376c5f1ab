/**
 * Image pull secrets Flui writes, so the cluster can pull from a registry that requires credentials (the bundled
 * registry of self-hosted builds, FLUI_PULL_SECRET_REGISTRIES): a `kubernetes.io/dockerconfigjson` Secret in the app's
 * namespace, for the image's own registry host only, referenced by the app's pod spec. The credential comes from the
 * worker's configuration (REGISTRY_AUTH_FILE, ...), never from the manifest; give the worker a read-only one for
 * such a registry (it only reads it: builders push with their own configuration).
 */
import type { V1Secret } from '@kubernetes/client-node';

export interface PullCredential {
  /** Registry host[:port], as in the image reference. */
  registry: string;
  username: string;
  password: string;
}

/** The Secret's name: one per registry host (`flui-pull-127-0-0-1-5001`), shared by the namespace's apps. */
export function pullSecretName(registry: string): string {
  const slug = registry
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '');
  return `flui-pull-${slug}`.slice(0, 63).replace(/-$/, '');
}

export function pullSecretFor(namespace: string, c: PullCredential, labels: Record<string, string>): V1Secret {
  const auth = Buffer.from(`${c.username}:${c.password}`).toString('base64');
  const config = { auths: { [c.registry]: { username: c.username, password: c.password, auth } } };
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'kubernetes.io/dockerconfigjson',
    metadata: { name: pullSecretName(c.registry), namespace, labels },
    data: { '.dockerconfigjson': Buffer.from(JSON.stringify(config)).toString('base64') },
  };
}
