/**
 * A local OCI registry: Debian's `docker-registry` (CNCF distribution 2.8) on 127.0.0.1, with its own config, storage
 * and optional htpasswd auth. Used by the sandbox and by tests.
 */
import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort, httpAnswers, makeTempDir, startServerProcess, type ServerProcess } from './process.ts';
import { findTool } from './tools.ts';

const run = promisify(execFile);

export interface RegistryOptions {
  /** Require these credentials (htpasswd, bcrypt). */
  auth?: { username: string; password: string };
  /** Storage and logs; a temp dir when omitted. Reusing a dir keeps the images. */
  dataDir?: string;
  port?: number;
}

export interface LocalRegistry {
  /** `127.0.0.1:PORT`: the host part of image references. */
  host: string;
  /** `http://127.0.0.1:PORT` */
  url: string;
  dataDir: string;
  process: ServerProcess;
  stop(): Promise<void>;
}

export async function startRegistry(opts: RegistryOptions = {}): Promise<LocalRegistry> {
  const binary = findTool(
    'docker-registry',
    'FLUI_REGISTRY_BINARY',
    'Install it with `npm run setup` (Debian package docker-registry).',
  );
  const dataDir = opts.dataDir ?? (await makeTempDir('registry'));
  await mkdir(join(dataDir, 'storage'), { recursive: true });
  const port = opts.port ?? (await freePort());
  const host = `127.0.0.1:${port}`;

  let auth = '';
  if (opts.auth) {
    const htpasswdBin = findTool(
      'htpasswd',
      undefined,
      'Install it with `npm run setup` (Debian package apache2-utils).',
    );
    // -i reads the password from stdin so it never appears in the process list.
    const child = run(htpasswdBin, ['-niB', opts.auth.username]);
    child.child.stdin?.end(opts.auth.password);
    const { stdout } = await child;
    await writeFile(join(dataDir, 'htpasswd'), stdout, { mode: 0o600 });
    auth = `auth:\n  htpasswd:\n    realm: flui-registry\n    path: ${join(dataDir, 'htpasswd')}\n`;
  }
  const config =
    `version: 0.1\n` +
    `log:\n  level: warn\n  accesslog:\n    disabled: true\n` +
    `storage:\n  filesystem:\n    rootdirectory: ${join(dataDir, 'storage')}\n  delete:\n    enabled: true\n` +
    `http:\n  addr: ${host}\n  secret: flui-local-${port}\n` +
    auth;
  const configPath = join(dataDir, 'config.yml');
  await writeFile(configPath, config);

  const url = `http://${host}`;
  const proc = await startServerProcess({
    name: 'docker-registry',
    command: binary,
    args: ['serve', configPath],
    logFile: join(dataDir, 'registry.log'),
    ready: () => httpAnswers(`${url}/v2/`),
    timeoutMs: 15_000,
  });
  return { host, url, dataDir, process: proc, stop: () => proc.stop() };
}
