/**
 * Seeding an installation's registry with base images offline: an OCI layout directory, an oci-archive or a
 * docker-archive tarball copied to `host/repo:tag` with skopeo, the digest taken from skopeo's own digest file.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ServiceError } from '../errors.ts';
import { parseImageReference } from '../registry/reference.ts';
import { authFile, pushFailureKind } from './buildah.ts';
import { BuildLog } from './logs.ts';
import { runCommand } from './process.ts';
import type { BuilderSettings } from './types.ts';

/** Which skopeo transport reads `archive`: a directory is an OCI layout; a tar says by its content which it is. */
async function transportOf(archive: string): Promise<string> {
  const st = await stat(archive).catch(() => undefined);
  if (!st) throw new ServiceError({ service: 'Builder', kind: 'not-found', message: `${archive} does not exist` });
  if (st.isDirectory()) return `oci:${archive}`;
  // A docker-archive has manifest.json at its top; an oci-archive has oci-layout and index.json.
  const handle = await open(archive, 'r');
  try {
    const head = Buffer.alloc(Math.min(st.size, 1 << 20));
    await handle.read(head, 0, head.length, 0);
    const names: string[] = [];
    for (let off = 0; off + 512 <= head.length;) {
      const name = head
        .subarray(off, off + 100)
        .toString('utf8')
        .replace(/\0.*$/s, '');
      if (!name) break;
      names.push(name.replace(/^\.\//, ''));
      const size = parseInt(
        head
          .subarray(off + 124, off + 136)
          .toString('utf8')
          .replace(/\0.*$/s, '')
          .trim() || '0',
        8,
      );
      off += 512 + Math.ceil(size / 512) * 512;
    }
    if (names.includes('oci-layout')) return `oci-archive:${archive}`;
    if (names.includes('manifest.json')) return `docker-archive:${archive}`;
  } finally {
    await handle.close();
  }
  return `oci-archive:${archive}`;
}

export async function importBaseImage(
  archive: string,
  target: string,
  settings: BuilderSettings,
  opts: { signal?: AbortSignal; onLog?: (line: string) => void } = {},
): Promise<{ digest: string }> {
  const ref = parseImageReference(target);
  if (!ref.tag || ref.digest) {
    throw new ServiceError({ service: 'Builder', kind: 'invalid', message: `"${target}" must be host/repository:tag` });
  }
  const source = await transportOf(archive);
  const dir = join(settings.workDir, `import-${randomBytes(6).toString('hex')}`);
  // Parents with the usual mode (a recursive mkdir would make them private too, and the builder's user namespace
  // must still search them); only the import's own directory is private.
  await mkdir(settings.workDir, { recursive: true });
  await mkdir(dir, { mode: 0o700 });
  const auth = authFile(settings.registryAuths, [ref.host]);
  const log = new BuildLog(auth.secrets, opts.onLog);
  try {
    await writeFile(join(dir, 'auth.json'), auth.json, { mode: 0o600 });
    const insecure = settings.insecureHosts.map((h) => h.toLowerCase()).includes(ref.host.toLowerCase());
    const digestFile = join(dir, 'digest');
    const res = await runCommand(
      'skopeo',
      [
        'copy',
        '--quiet',
        '--insecure-policy',
        '--dest-authfile',
        join(dir, 'auth.json'),
        ...(insecure ? ['--dest-tls-verify=false'] : []),
        '--digestfile',
        digestFile,
        source,
        `docker://${ref.host}/${ref.repository}:${ref.tag}`,
      ],
      { log, signal: opts.signal, env: { PATH: process.env.PATH, HOME: dir, TMPDIR: dir } },
    );
    if (res.code !== 0) {
      const tail = log.tail();
      const kind = /no such file|invalid|unsupported|does not match/i.test(tail) ? 'invalid' : pushFailureKind(tail);
      throw new ServiceError({
        service: kind === 'invalid' ? 'Builder' : 'Registry',
        kind,
        message: `importing ${archive} as ${target} failed:\n${tail}`,
      });
    }
    return { digest: (await readFile(digestFile, 'utf8')).trim() };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
