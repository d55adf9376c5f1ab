/**
 * Small base images built offline from what this machine has, as OCI image layouts (or oci-archive tarballs) that
 * `importBaseImage` (skopeo) pushes into an installation's registry:
 * - `busybox`: Debian's busybox-static and a link per applet, a root and a `nobody` user, /tmp.
 * - `node`: the same plus the host's own node binary and the shared libraries `ldd` lists for it, and a `node`
 *   user (uid 1000, as in Docker Hub's node images), so a Dockerfile written for `node:20` builds against it.
 * Everything is written with mtime 0 and in sorted order: the same inputs always give the same digest, so seeding
 * twice changes nothing. Run: `node --import tsx dev/base-images.ts <busybox|node> <out-dir> [--archive file.tar]`.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readFile, readdir, realpath, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { createGzip } from 'node:zlib';
import { pack, type Pack } from 'tar-stream';

const run = promisify(execFile);

export type BaseImageKind = 'busybox' | 'node';

interface Entry {
  type: 'dir' | 'file' | 'symlink';
  mode: number;
  /** Host file to copy (files). */
  from?: string;
  content?: string;
  target?: string;
  uid?: number;
  gid?: number;
}

const PATH_ENV = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

async function busyboxEntries(): Promise<Map<string, Entry>> {
  const busybox = await realpath((await run('sh', ['-c', 'command -v busybox'])).stdout.trim());
  const { stdout } = await run(busybox, ['--list-full']);
  const fs = new Map<string, Entry>();
  for (const d of ['bin', 'sbin', 'usr', 'usr/bin', 'usr/sbin', 'etc', 'root', 'home', 'var', 'lib', 'lib64'])
    fs.set(d, { type: 'dir', mode: 0o755 });
  fs.set('tmp', { type: 'dir', mode: 0o1777 });
  fs.set('root', { type: 'dir', mode: 0o700 });
  fs.set('bin/busybox', { type: 'file', mode: 0o755, from: busybox });
  for (const applet of stdout
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)) {
    if (applet === 'bin/busybox' || fs.has(applet)) continue;
    const depth = applet.split('/').length - 1;
    fs.set(applet, { type: 'symlink', mode: 0o777, target: `${'../'.repeat(depth)}bin/busybox` });
  }
  fs.set('etc/passwd', {
    type: 'file',
    mode: 0o644,
    content: 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n',
  });
  fs.set('etc/group', { type: 'file', mode: 0o644, content: 'root:x:0:\nnogroup:x:65534:\n' });
  return fs;
}

async function nodeEntries(): Promise<Map<string, Entry>> {
  const fs = await busyboxEntries();
  const node = await realpath(process.execPath);
  for (const d of ['usr/local', 'usr/local/bin', 'home/node']) fs.set(d, { type: 'dir', mode: 0o755 });
  fs.set('home/node', { type: 'dir', mode: 0o755, uid: 1000, gid: 1000 });
  fs.set('usr/local/bin/node', { type: 'file', mode: 0o755, from: node });
  const { stdout } = await run('ldd', [node]);
  for (const line of stdout.split('\n')) {
    // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)" or "/lib64/ld-linux-x86-64.so.2 (0x…)"
    const m = /(?:=>\s*)?(\/\S+)\s+\(0x/.exec(line);
    if (!m) continue;
    const path = m[1]!.replace(/^\//, '');
    const parts = path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const d = parts.slice(0, i).join('/');
      if (!fs.has(d)) fs.set(d, { type: 'dir', mode: 0o755 });
    }
    fs.set(path, { type: 'file', mode: 0o755, from: await realpath(m[1]!) });
  }
  fs.set('etc/passwd', {
    type: 'file',
    mode: 0o644,
    content:
      'root:x:0:0:root:/root:/bin/sh\nnode:x:1000:1000::/home/node:/bin/sh\n' +
      'nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n',
  });
  fs.set('etc/group', { type: 'file', mode: 0o644, content: 'root:x:0:\nnode:x:1000:\nnogroup:x:65534:\n' });
  return fs;
}

function addEntry(archive: Pack, name: string, e: Entry, content?: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const header = { name, mode: e.mode, mtime: new Date(0), uid: e.uid ?? 0, gid: e.gid ?? 0 };
    const done = (err?: Error | null) => (err ? reject(err) : resolve());
    if (e.type === 'dir') archive.entry({ ...header, type: 'directory' }, done);
    else if (e.type === 'symlink') archive.entry({ ...header, type: 'symlink', linkname: e.target }, done);
    else archive.entry({ ...header, type: 'file' }, content ?? Buffer.alloc(0), done);
  });
}

const hex = (h: ReturnType<typeof createHash>) => h.digest('hex');

/** Writes one gzip'd layer of `files` into the layout's blobs; returns its digests and size. */
async function writeLayer(
  files: Map<string, Entry>,
  blobs: string,
): Promise<{ digest: string; diffId: string; size: number }> {
  const archive = pack();
  const diff = createHash('sha256');
  const compressed = createHash('sha256');
  let size = 0;
  const tmp = join(blobs, `layer-${process.pid}.tmp`);
  const gzip = createGzip({ level: 6 });
  archive.on('data', (c: unknown) => diff.update(c as Buffer));
  gzip.on('data', (c: Buffer) => {
    compressed.update(c);
    size += c.length;
  });
  const written = pipeline(archive, gzip, createWriteStream(tmp));
  for (const name of [...files.keys()].sort()) {
    const e = files.get(name)!;
    const content = e.type === 'file' ? (e.from ? await readFile(e.from) : Buffer.from(e.content ?? '')) : undefined;
    await addEntry(archive, name, e, content);
  }
  archive.finalize();
  await written;
  const digest = hex(compressed);
  await rename(tmp, join(blobs, digest));
  return { digest: `sha256:${digest}`, diffId: `sha256:${hex(diff)}`, size };
}

async function writeBlob(blobs: string, data: string): Promise<{ digest: string; size: number }> {
  const digest = createHash('sha256').update(data).digest('hex');
  await writeFile(join(blobs, digest), data);
  return { digest: `sha256:${digest}`, size: Buffer.byteLength(data) };
}

/** Builds the image as an OCI layout in `outDir` (replaced), tagged `tag`; returns the manifest digest. */
export async function buildBaseImage(kind: BaseImageKind, outDir: string, tag = 'latest'): Promise<{ digest: string }> {
  await rm(outDir, { recursive: true, force: true });
  const blobs = join(outDir, 'blobs', 'sha256');
  await mkdir(blobs, { recursive: true });
  const files = kind === 'node' ? await nodeEntries() : await busyboxEntries();
  const layer = await writeLayer(files, blobs);
  const config = JSON.stringify({
    architecture: 'amd64',
    os: 'linux',
    created: '1970-01-01T00:00:00Z',
    config: {
      Env: kind === 'node' ? [PATH_ENV, `NODE_VERSION=${process.versions.node}`] : [PATH_ENV],
      Cmd: kind === 'node' ? ['node'] : ['sh'],
    },
    rootfs: { type: 'layers', diff_ids: [layer.diffId] },
    history: [{ created: '1970-01-01T00:00:00Z', created_by: `flui dev/base-images.ts ${kind}` }],
  });
  const configBlob = await writeBlob(blobs, config);
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...configBlob },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layer.digest, size: layer.size }],
  });
  const manifestBlob = await writeBlob(blobs, manifest);
  await writeFile(join(outDir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeFile(
    join(outDir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          ...manifestBlob,
          annotations: { 'org.opencontainers.image.ref.name': tag },
        },
      ],
    }),
  );
  return { digest: manifestBlob.digest };
}

/** Packs an OCI layout directory into an oci-archive tarball. */
export async function packOciArchive(layoutDir: string, tarPath: string): Promise<void> {
  await mkdir(dirname(tarPath), { recursive: true });
  const archive = pack();
  const written = pipeline(archive, createWriteStream(tarPath));
  const walk = async (rel: string): Promise<void> => {
    for (const name of (await readdir(join(layoutDir, rel))).sort()) {
      const path = rel ? `${rel}/${name}` : name;
      const st = await stat(join(layoutDir, path));
      if (st.isDirectory()) {
        await new Promise<void>((res, rej) =>
          archive.entry({ name: path, type: 'directory', mode: 0o755, mtime: new Date(0) }, (e) =>
            e ? rej(e) : res(),
          ),
        );
        await walk(path);
      } else {
        await new Promise<void>((res, rej) => {
          const entry = archive.entry({ name: path, size: st.size, mode: 0o644, mtime: new Date(0) }, (e) =>
            e ? rej(e) : res(),
          );
          createReadStream(join(layoutDir, path)).pipe(entry);
        });
      }
    }
  };
  await walk('');
  archive.finalize();
  await written;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [kind, out, flag, archivePath] = process.argv.slice(2);
  if ((kind !== 'busybox' && kind !== 'node') || !out) {
    console.error('usage: dev/base-images.ts <busybox|node> <out-dir> [--archive file.tar]');
    process.exit(2);
  }
  const { digest } = await buildBaseImage(kind, out);
  if (flag === '--archive' && archivePath) await packOciArchive(out, archivePath);
  console.log(digest);
}
