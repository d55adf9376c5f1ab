/**
 * A real OCI registry (Debian's docker-registry) in token-auth mode, with a small Docker token service in front of
 * it: what ghcr.io, Docker Hub and most cloud registries do. A client without a token gets a 401 with
 * `WWW-Authenticate: Bearer realm=...,service=...,scope=...`, asks the realm for a token (Basic credentials), and
 * retries with it. The registry verifies the token's signature against the service's certificate (made here with
 * openssl) and its `access` claims.
 *
 * It can also trust other signers' certificates (`trust`): Flui's own, whose tokens (src/registry/push-token.ts)
 * then push without any token service, as a registry that trusts Flui's minting certificate does.
 *
 * Only tests need this (the sandbox's registry uses htpasswd: dev/registry.ts), so it lives here.
 */
import { execFile } from 'node:child_process';
import { createSign, randomUUID, X509Certificate } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort, httpAnswers, makeTempDir, startServerProcess } from '../../dev/process.ts';
import { findTool } from '../../dev/tools.ts';
import { useServer } from './suite.ts';

const run = promisify(execFile);
const SERVICE = 'flui-test-registry';
const ISSUER = 'flui-test-token-service';

export interface TokenRegistry {
  /** `127.0.0.1:PORT` of the registry. */
  host: string;
  /** What tokens must name as `iss` and `aud` (the registry's `auth.token.issuer` and `service`). */
  issuer: string;
  service: string;
  url: string;
  /** The token service's realm. */
  realm: string;
  /** Token requests answered, and refused (bad credentials). */
  tokens: { issued: number; refused: number };
  /** Make the token service answer 503 to the next `count` requests (an outage of the auth service). */
  failTokens(count: number): void;
  dataDir: string;
  stop(): Promise<void>;
}

/**
 * A signing key and its self-signed certificate, made with openssl (`rsa`: RSA 2048, `ec`: P-256), as files in `dir`.
 */
export async function makeSigningFiles(
  dir: string,
  name: string,
  kind: 'rsa' | 'ec' = 'rsa',
): Promise<{ keyFile: string; certificateFile: string }> {
  const openssl = findTool('openssl', undefined, 'Install the Debian package openssl.');
  const [keyFile, certificateFile] = [join(dir, `${name}.key`), join(dir, `${name}.pem`)];
  const newkey = kind === 'rsa' ? ['-newkey', 'rsa:2048'] : ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];
  await run(openssl, [
    'req',
    '-x509',
    ...newkey,
    '-nodes',
    '-keyout',
    keyFile,
    '-out',
    certificateFile,
    '-days',
    '2',
    '-subj',
    `/CN=${name}`,
  ]);
  return { keyFile, certificateFile };
}

export async function startTokenRegistry(
  auth: { username: string; password: string },
  opts: { trust?: string[] } = {},
): Promise<TokenRegistry> {
  const dataDir = await makeTempDir('token-registry');
  const { keyFile: keyPath, certificateFile: ownCertPath } = await makeSigningFiles(dataDir, ISSUER);
  // The registry trusts the token service's certificate and any other signer's it is given.
  const certPath = join(dataDir, 'trusted.pem');
  const trusted = [
    await readFile(ownCertPath, 'utf8'),
    ...(await Promise.all((opts.trust ?? []).map((f) => readFile(f, 'utf8')))),
  ];
  await writeFile(certPath, trusted.join('\n'));
  const [key, cert] = [await readFile(keyPath, 'utf8'), new X509Certificate(await readFile(ownCertPath))];
  const x5c = cert.raw.toString('base64');

  const tokens = { issued: 0, refused: 0 };
  let failing = 0;
  const tokenServer = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://token');
    if (failing > 0) {
      failing--;
      res.writeHead(503).end();
      return;
    }
    const basic = /^Basic (.+)$/i.exec(req.headers.authorization ?? '')?.[1];
    const [user, ...rest] = basic ? Buffer.from(basic, 'base64').toString('utf8').split(':') : [];
    const authenticated = user === auth.username && rest.join(':') === auth.password;
    if (basic && !authenticated) {
      tokens.refused++;
      res.writeHead(401, { 'content-type': 'application/json' }).end('{"details":"invalid credentials"}');
      return;
    }
    // Anonymous clients get a token without access, so the registry refuses them, as public registries do.
    const access = (authenticated ? url.searchParams.getAll('scope') : []).flatMap((scope) => {
      const [type, name, actions] = scope.split(':');
      return type && name && actions ? [{ type, name, actions: actions.split(',') }] : [];
    });
    const now = Math.floor(Date.now() / 1000);
    const part = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const unsigned = `${part({ alg: 'RS256', typ: 'JWT', x5c: [x5c] })}.${part({
      iss: ISSUER,
      sub: authenticated ? user : '',
      aud: url.searchParams.get('service') ?? SERVICE,
      exp: now + 300,
      nbf: now - 10,
      iat: now,
      jti: randomUUID(),
      access,
    })}`;
    const token = `${unsigned}.${createSign('RSA-SHA256').update(unsigned).sign(key).toString('base64url')}`;
    tokens.issued++;
    res
      .writeHead(200, { 'content-type': 'application/json' })
      .end(JSON.stringify({ token, access_token: token, expires_in: 300, issued_at: new Date().toISOString() }));
  });
  await new Promise<void>((resolve) => tokenServer.listen(0, '127.0.0.1', resolve));
  const realm = `http://127.0.0.1:${(tokenServer.address() as AddressInfo).port}/token`;

  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const configPath = join(dataDir, 'config.yml');
  await writeFile(
    configPath,
    `version: 0.1\n` +
      `log:\n  level: warn\n  accesslog:\n    disabled: true\n` +
      `storage:\n  filesystem:\n    rootdirectory: ${join(dataDir, 'storage')}\n` +
      `http:\n  addr: ${host}\n  secret: flui-token-${port}\n` +
      `auth:\n  token:\n    realm: ${realm}\n    service: ${SERVICE}\n    issuer: ${ISSUER}\n    rootcertbundle: ${certPath}\n`,
  );
  const url = `http://${host}`;
  let proc;
  try {
    proc = await startServerProcess({
      name: 'docker-registry (token auth)',
      command: findTool('docker-registry', 'FLUI_REGISTRY_BINARY', 'Install the Debian package docker-registry.'),
      args: ['serve', configPath],
      logFile: join(dataDir, 'registry.log'),
      ready: () => httpAnswers(`${url}/v2/`),
      timeoutMs: 15_000,
    });
  } catch (err) {
    tokenServer.close();
    throw err;
  }
  const registry = proc;
  return {
    host,
    issuer: ISSUER,
    service: SERVICE,
    url,
    realm,
    tokens,
    failTokens: (count) => void (failing = count),
    dataDir,
    async stop() {
      await registry.stop();
      await new Promise<void>((resolve) => tokenServer.close(() => resolve()));
    },
  };
}

/** A token-auth registry for this suite (trusting the certificates in `trust`, files, besides its own). */
export function useTokenRegistry(
  auth: { username: string; password: string },
  opts: { trust?: () => string[] } = {},
): () => TokenRegistry {
  return useServer(() => startTokenRegistry(auth, { trust: opts.trust?.() }));
}
