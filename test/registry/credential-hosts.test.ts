/**
 * A registry credential goes to its own host only, and only after that host asked for it. A manifest names whatever
 * registry it likes, so these tests put a hostile registry on loopback and check that no byte of the worker's
 * credential ever reaches it: not when it is the image's registry (resolve), not as the token realm or the redirect
 * target of a registry the credential does belong to, and not as the Location of an upload (the harness's push).
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { checkLogin, pushImage } from '@flui/github-emulator/registry-push';
import { createRegistryActivities as createUnwrapped } from '../../src/activities/registry.ts';
import { withActivityFailures } from '../../src/activities/failures.ts';
import { headManifest, RegistryUnauthorizedError } from '../../src/registry/oci.ts';
import { REGISTRY_PASSWORD, REGISTRY_USER, useRegistry } from '../helpers/registry.ts';

const credentials = { username: REGISTRY_USER, password: REGISTRY_PASSWORD };
const secretForms = [
  REGISTRY_PASSWORD,
  Buffer.from(`${REGISTRY_USER}:${REGISTRY_PASSWORD}`).toString('base64'),
  Buffer.from(REGISTRY_PASSWORD).toString('base64'),
];

interface Seen {
  method: string;
  url: string;
  authorization?: string;
  raw: string;
}

type Answer = { status: number; headers?: Record<string, string> };

/** A loopback HTTP server that records everything it receives and answers with `answer`. */
class Hostile {
  readonly seen: Seen[] = [];
  #server!: Server;
  host = '';
  answer: (req: IncomingMessage, seen: Seen) => Answer = () => ({ status: 404 });

  async start(): Promise<void> {
    this.#server = createServer(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const seen: Seen = {
        method: req.method ?? '',
        url: req.url ?? '',
        authorization: req.headers.authorization,
        raw: `${req.method} ${req.url}\n${JSON.stringify(req.headers)}\n${Buffer.concat(chunks).toString('latin1')}`,
      };
      this.seen.push(seen);
      const { status, headers } = this.answer(req, seen);
      res.writeHead(status, headers).end();
    });
    await new Promise<void>((r) => this.#server.listen(0, '127.0.0.1', r));
    this.host = `127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  stop(): Promise<void> {
    return new Promise((r) => this.#server.close(() => r()));
  }

  /** Every byte received, checked for the password in any form a client would send it. */
  assertNoCredential(): void {
    for (const s of this.seen) {
      for (const form of secretForms) assert.ok(!s.raw.includes(form), `credential reached ${this.host}: ${s.raw}`);
    }
  }
}

describe('registry credentials go only to their own host, after its challenge', () => {
  const registry = useRegistry({ auth: true });
  const hostile = new Hostile();
  /** A registry the worker does hold credentials for, which turns out to be malicious. */
  const configured = new Hostile();
  before(async () => {
    await hostile.start();
    await configured.start();
  });
  after(async () => {
    await hostile.stop();
    await configured.stop();
  });

  const activities = () =>
    withActivityFailures(
      createUnwrapped({
        registry: {
          auths: {
            [registry().host]: { ...credentials, realms: [] },
            [configured.host]: { ...credentials, realms: [] },
          },
          insecureHosts: ['127.0.0.1'],
        },
      }),
    );

  it('resolves from the registry the credential belongs to, which challenged for it first', async () => {
    const image = `${registry().host}/acme/creds:v1`;
    const pushed = await pushImage(image, { credentials, files: { a: 'a' } });
    assert.equal((await activities().resolveImage({ image })).digest, pushed.digest);
  });

  it('asks a registry it holds no credential for anonymously, whatever it challenges for', async () => {
    for (const challenge of ['Basic realm="give me your password"', `Bearer realm="http://${'HOST'}/token"`]) {
      hostile.seen.length = 0;
      hostile.answer = (req) =>
        req.url?.startsWith('/token')
          ? { status: 401 }
          : { status: 401, headers: { 'www-authenticate': challenge.replace('HOST', hostile.host) } };
      await assert.rejects(activities().resolveImage({ image: `${hostile.host}/acme/x:1` }), /Unauthorized|refused/);
      assert.ok(hostile.seen.length >= 1);
      assert.ok(
        hostile.seen.every((s) => s.authorization === undefined),
        JSON.stringify(hostile.seen),
      );
      hostile.assertNoCredential();
    }
  });

  it('sends the credential to its own host only after a challenge, never to its token realm on another host', async () => {
    configured.seen.length = 0;
    hostile.seen.length = 0;
    configured.answer = () => ({
      status: 401,
      headers: {
        'www-authenticate': `Bearer realm="http://${hostile.host}/token",service="x",scope="repository:a:pull"`,
      },
    });
    hostile.answer = () => ({ status: 401 });
    await assert.rejects(
      headManifest(`${configured.host}/acme/x:1`, { credentials, insecureHosts: ['127.0.0.1'] }),
      (err: unknown) => err instanceof RegistryUnauthorizedError && /asked without credentials/.test(err.message),
    );
    assert.equal(configured.seen[0]?.authorization, undefined, 'the first request goes out without credentials');
    assert.ok(hostile.seen.length >= 1, 'the realm was asked');
    hostile.assertNoCredential();
  });

  it('answers a Basic challenge of its own host, and follows a redirect to another host without the header', async () => {
    configured.seen.length = 0;
    hostile.seen.length = 0;
    configured.answer = (_req, seen): Answer =>
      seen.authorization
        ? { status: 307, headers: { location: `http://${hostile.host}/v2/acme/x/manifests/1` } }
        : { status: 401, headers: { 'www-authenticate': 'Basic realm="registry"' } };
    hostile.answer = () => ({ status: 404 });
    await assert.rejects(headManifest(`${configured.host}/acme/x:1`, { credentials, insecureHosts: ['127.0.0.1'] }));
    assert.deepEqual(
      configured.seen.map((s) => s.authorization !== undefined),
      [false, true],
      'anonymous first, the credential only after the challenge',
    );
    assert.equal(hostile.seen.length, 1, 'the redirect was followed');
    hostile.assertNoCredential();
  });

  it("never sends the header to an upload Location on another host (the emulated CI's and the sandbox's push)", async () => {
    configured.seen.length = 0;
    hostile.seen.length = 0;
    configured.answer = (req, seen): Answer => {
      if (!seen.authorization) return { status: 401, headers: { 'www-authenticate': 'Basic realm="registry"' } };
      if (req.method === 'HEAD') return { status: 404 };
      return { status: 202, headers: { location: `http://${hostile.host}/upload/1` } };
    };
    hostile.answer = () => ({ status: 500 });
    await assert.rejects(
      pushImage(`${configured.host}/acme/x:1`, { credentials, insecureHosts: ['127.0.0.1'], files: { a: 'a' } }),
    );
    await assert.rejects(checkLogin(hostile.host, { insecureHosts: ['127.0.0.1'] }));
    assert.ok(
      hostile.seen.some((s) => s.url.startsWith('/upload/')),
      'the upload went to the Location',
    );
    hostile.assertNoCredential();
  });
});
