/**
 * Helpers of the self-hosted build tests: the registry's and the cluster's own view of an app's image, and a busybox
 * base image seeded into the stack's registry (as `flui base-images import` does) for Dockerfiles with RUN steps.
 */
import { join } from 'node:path';
import { buildBaseImage } from '../../dev/base-images.ts';
import { importBaseImage } from '../../src/build/index.ts';
import { builderSettings } from '../../src/ci/self-hosted/settings.ts';
import { kubeClients } from '../../src/kube/rollout.ts';
import type { Application } from '../../src/manifest/schema.ts';
import type { LocalStack } from '../../dev/stack.ts';

/** The registry's own digest for `tag` of the app's image (Docker-Content-Digest), with the stack's credential. */
export async function registryDigest(s: LocalStack, app: Application, tag: string): Promise<string | undefined> {
  const repository = app.spec.image.repository.slice(s.registryHost.length + 1);
  const res = await fetch(`http://${s.registryHost}/v2/${repository}/manifests/${tag}`, {
    method: 'HEAD',
    headers: {
      authorization: `Basic ${Buffer.from(`${s.env.REGISTRY_USERNAME}:${s.env.REGISTRY_PASSWORD}`).toString('base64')}`,
      accept: [
        'application/vnd.oci.image.manifest.v1+json',
        'application/vnd.oci.image.index.v1+json',
        'application/vnd.docker.distribution.manifest.v2+json',
      ].join(', '),
    },
  });
  return res.ok ? (res.headers.get('docker-content-digest') ?? undefined) : undefined;
}

/** The image the app's Deployment runs. */
export async function runningImage(s: LocalStack, app: Application): Promise<string | undefined> {
  const k = kubeClients(s.env.KUBECONFIG);
  const d = await k.apps.readNamespacedDeployment({ name: app.metadata.name, namespace: app.metadata.namespace });
  return d.spec?.template.spec?.containers[0]?.image;
}

/** Seeds `busybox` into the stack's registry (FLUI_BASE_REGISTRY) as `flui base-images import` does; its digest. */
export async function seedBusybox(s: LocalStack): Promise<string> {
  const layout = join(s.dataDir, 'base-busybox');
  await buildBaseImage('busybox', layout);
  const { digest } = await importBaseImage(
    layout,
    `${s.registryHost}/library/busybox:latest`,
    builderSettings(s.config),
  );
  return digest;
}
