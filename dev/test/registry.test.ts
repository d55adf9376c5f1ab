import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { REGISTRY_PASSWORD, REGISTRY_USER, useRegistry } from '../../test/helpers/registry.ts';

const basic = `Basic ${Buffer.from(`${REGISTRY_USER}:${REGISTRY_PASSWORD}`).toString('base64')}`;
const sha256 = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** Pushes one blob over the distribution API (monolithic upload) and returns its digest. */
async function pushBlob(base: string, name: string, body: Buffer, auth: string): Promise<string> {
  const digest = sha256(body);
  const start = await fetch(`${base}/v2/${name}/blobs/uploads/`, { method: 'POST', headers: { authorization: auth } });
  assert.equal(start.status, 202);
  const location = new URL(start.headers.get('location')!, base);
  location.searchParams.set('digest', digest);
  const put = await fetch(location, {
    method: 'PUT',
    headers: { authorization: auth, 'content-type': 'application/octet-stream' },
    body,
  });
  assert.equal(put.status, 201, await put.text());
  return digest;
}

describe('OCI registry (docker-registry with htpasswd)', () => {
  const registry = useRegistry({ auth: true });

  it('refuses requests without credentials with a Basic challenge', async () => {
    const res = await fetch(`${registry().url}/v2/`);
    assert.equal(res.status, 401);
    assert.match(res.headers.get('www-authenticate') ?? '', /^Basic realm="flui-registry"/);
    const wrong = await fetch(`${registry().url}/v2/`, {
      headers: { authorization: `Basic ${Buffer.from(`${REGISTRY_USER}:nope`).toString('base64')}` },
    });
    assert.equal(wrong.status, 401);
  });

  it('accepts a pushed image and resolves its tag to the manifest digest', async () => {
    const base = registry().url;
    const config = Buffer.from(
      JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }),
    );
    const layer = Buffer.from('not really a tarball, the registry does not care');
    const configDigest = await pushBlob(base, 'acme/hello', config, basic);
    const layerDigest = await pushBlob(base, 'acme/hello', layer, basic);
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layerDigest, size: layer.length }],
    });
    const put = await fetch(`${base}/v2/acme/hello/manifests/abc123`, {
      method: 'PUT',
      headers: { authorization: basic, 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
      body: manifest,
    });
    assert.equal(put.status, 201, await put.text());
    assert.equal(put.headers.get('docker-content-digest'), sha256(manifest));

    const head = await fetch(`${base}/v2/acme/hello/manifests/abc123`, {
      method: 'HEAD',
      headers: { authorization: basic, accept: 'application/vnd.oci.image.manifest.v1+json' },
    });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('docker-content-digest'), sha256(manifest));

    const anonymous = await fetch(`${base}/v2/acme/hello/manifests/abc123`, { method: 'HEAD' });
    assert.equal(anonymous.status, 401);
    const missing = await fetch(`${base}/v2/acme/hello/manifests/nope`, {
      method: 'HEAD',
      headers: { authorization: basic },
    });
    assert.equal(missing.status, 404);
  });
});
