/**
 * What the install manifests promise, read from the files: two spread replicas, probes on the ops endpoints, requests
 * and limits, a locked-down container, a PodDisruptionBudget that keeps a poller, a Service for both ports, and
 * configuration split so no secret sits in the ConfigMap. install.test.ts applies them to a real API server.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { V1Deployment, V1PodDisruptionBudget, V1Service } from '@kubernetes/client-node';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { find, workerObjects, type K8sObject } from './manifests.ts';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));
const sources = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );

const objects = workerObjects();
const deployment = find<V1Deployment>(objects, 'Deployment', 'flui-worker');
const pod = deployment.spec!.template.spec!;
const container = pod.containers[0]!;
const configMap = find<K8sObject & { data: Record<string, string> }>(objects, 'ConfigMap', 'flui-worker');

/** A name that says it holds a credential. */
const SECRET_NAME = /TOKEN|PASSWORD|SECRET|PRIVATE_KEY|API_KEY|AUTH|CREDENTIAL|_KEY_DATA|_CERT_DATA/;

describe('install manifests (deploy/kubernetes/)', () => {
  it('runs two workers, spread over nodes when it can, rolled one at a time without losing a poller', () => {
    assert.equal(deployment.spec!.replicas, 2);
    const anti = pod.affinity?.podAntiAffinity?.preferredDuringSchedulingIgnoredDuringExecution?.[0];
    assert.equal(anti?.podAffinityTerm.topologyKey, 'kubernetes.io/hostname');
    assert.deepEqual(anti?.podAffinityTerm.labelSelector?.matchLabels, deployment.spec!.selector.matchLabels);
    assert.equal(deployment.spec!.strategy?.rollingUpdate?.maxUnavailable, 0);
    const pdb = find<V1PodDisruptionBudget>(objects, 'PodDisruptionBudget');
    assert.equal(pdb.spec!.minAvailable, 1);
    assert.deepEqual(pdb.spec!.selector?.matchLabels, deployment.spec!.selector.matchLabels);
  });

  it('probes the ops endpoints: /livez for liveness, /readyz (connected and polling) for readiness', () => {
    const metrics = container.ports!.find((p) => p.name === 'metrics');
    assert.equal(metrics?.containerPort, Number(configMap.data.FLUI_OPS_PORT));
    assert.equal(container.livenessProbe?.httpGet?.path, '/livez');
    assert.equal(container.readinessProbe?.httpGet?.path, '/readyz');
    assert.equal(container.startupProbe?.httpGet?.path, '/livez');
    for (const probe of [container.livenessProbe, container.readinessProbe, container.startupProbe]) {
      assert.equal(probe?.httpGet?.port, 'metrics');
    }
    assert.equal(configMap.data.FLUI_OPS_HOST, '0.0.0.0', 'the kubelet probes the pod IP, not its loopback');
  });

  it('asks for resources and caps them', () => {
    assert.ok(container.resources?.requests?.cpu && container.resources.requests.memory);
    assert.ok(container.resources.limits?.memory && container.resources.limits.cpu);
  });

  it('runs as a numeric non-root user, read-only, with no capabilities and the runtime’s seccomp profile', () => {
    const sc = container.securityContext!;
    assert.equal(sc.readOnlyRootFilesystem, true);
    assert.equal(sc.allowPrivilegeEscalation, false);
    assert.equal(sc.runAsNonRoot, true);
    assert.deepEqual(sc.capabilities?.drop, ['ALL']);
    assert.equal(sc.capabilities?.add, undefined);
    assert.equal(sc.seccompProfile?.type, 'RuntimeDefault');
    assert.ok((pod.securityContext?.runAsUser ?? 0) > 0);
    // The only writable place is an emptyDir (scratch, HOME and TMPDIR).
    const scratch = container.volumeMounts?.find((m) => m.mountPath === '/tmp');
    assert.ok(pod.volumes?.find((v) => v.name === scratch?.name)?.emptyDir, 'an emptyDir at /tmp');
    assert.ok(!pod.hostNetwork && !pod.hostPID && !pod.hostIPC);
  });

  it('exposes the webhook and metrics ports through the Service', () => {
    const service = find<V1Service>(objects, 'Service', 'flui-worker');
    assert.deepEqual(service.spec!.selector, deployment.spec!.selector.matchLabels);
    assert.deepEqual(
      service.spec!.ports!.map((p) => [p.name, p.targetPort]),
      [
        ['webhook', 'webhook'],
        ['metrics', 'metrics'],
      ],
    );
    const webhook = container.ports!.find((p) => p.name === 'webhook');
    assert.equal(webhook?.containerPort, Number(configMap.data.FLUI_WEBHOOK_PORT));
  });

  it('sets only variables the worker reads (a misspelt key would be ignored silently)', () => {
    // Flui's own are read in src/; Temporal's connection (TEMPORAL_*) by the SDK's envconfig, documented in README.
    const read = sources(SRC)
      .map((f) => readFileSync(f, 'utf8'))
      .join('\n');
    const readme = readFileSync(join(SRC, '..', 'README.md'), 'utf8');
    const known = (key: string) =>
      key.startsWith('TEMPORAL_') ? readme.includes(`\`${key}\``) : new RegExp(`['"]${key}['"]`).test(read);
    assert.deepEqual(
      Object.keys(configMap.data).filter((key) => !known(key)),
      [],
    );
  });

  it('takes settings from the ConfigMap and secrets from the Secret, never a secret in the ConfigMap', () => {
    assert.deepEqual(
      container.envFrom?.map((e) => e.configMapRef?.name ?? `secret:${e.secretRef?.name}`),
      ['flui-worker', 'secret:flui-worker'],
    );
    assert.equal(container.envFrom?.[1]?.secretRef?.optional, undefined, 'the Secret is required');
    const leaked = Object.keys(configMap.data).filter((k) => SECRET_NAME.test(k));
    assert.deepEqual(leaked, []);
    for (const e of container.env ?? []) assert.equal(e.value, undefined, `${e.name}: no literal values in the pod`);
    assert.equal(
      objects.some((o) => o.kind === 'Secret'),
      false,
      'no Secret in the manifests: created by the installer',
    );
  });
});
