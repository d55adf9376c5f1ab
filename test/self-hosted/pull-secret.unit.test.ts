/** The image pull secret Flui writes for a registry that needs credentials, and the pod spec that uses it. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pullSecretFor, pullSecretName } from '../../src/kube/pull-secret.ts';
import { deploymentFor } from '../../src/kube/rollout.ts';
import { validateManifest } from '../../src/manifest/parse.ts';
import type { Application } from '../../src/manifest/schema.ts';

describe('image pull secrets', () => {
  it('are named after the registry host, one per host, as a DNS name', () => {
    assert.equal(pullSecretName('127.0.0.1:5001'), 'flui-pull-127-0-0-1-5001');
    assert.equal(pullSecretName('Registry.Internal'), 'flui-pull-registry-internal');
    assert.ok(pullSecretName(`${'a'.repeat(80)}.example`).length <= 63);
  });

  it('hold a docker config for that registry alone', () => {
    const secret = pullSecretFor('shop', { registry: 'r.internal:5000', username: 'u', password: 'p' }, {});
    assert.equal(secret.type, 'kubernetes.io/dockerconfigjson');
    assert.equal(secret.metadata?.namespace, 'shop');
    const config = JSON.parse(Buffer.from(secret.data!['.dockerconfigjson']!, 'base64').toString());
    assert.deepEqual(Object.keys(config.auths), ['r.internal:5000']);
    assert.equal(Buffer.from(config.auths['r.internal:5000'].auth, 'base64').toString(), 'u:p');
  });

  it('are referenced by the pod spec only when the target has one', () => {
    const app = validateManifest({
      apiVersion: 'flui.dev/v1',
      kind: 'Application',
      metadata: { name: 'hello' },
      spec: { source: { repository: 'acme/hello' }, image: { repository: 'r.internal:5000/acme/hello' }, port: 8080 },
    }) as Application;
    const target = { namespace: 'default', app: 'hello', workload: app.spec, image: 'x@sha256:1', deployId: 'd' };
    assert.equal(deploymentFor(target).spec?.template.spec?.imagePullSecrets, undefined);
    assert.deepEqual(deploymentFor({ ...target, pullSecret: 'flui-pull-r' }).spec?.template.spec?.imagePullSecrets, [
      { name: 'flui-pull-r' },
    ]);
  });
});
