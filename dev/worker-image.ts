/**
 * The worker's container image (Containerfile at the repository root), built with buildah on a machine with no
 * internet, as the tests and `npm run image` do:
 *
 *   npm run image                        # builds flui-worker:dev into ~/.cache/flui/buildah, prints its size
 *   npm run image -- --push HOST/flui/worker:TAG [--tls-verify=false]
 *
 * - The base: `node:20` from no registry at all. {@link nodeBaseArchive} makes an OCI archive of this machine's own
 *   Node.js 20 (dev/base-images.ts: node, its libraries, busybox; plus npm and the Temporal bridge's libraries) once
 *   (cached), and {@link seedImage} copies it into a registry with skopeo. The Containerfile takes
 *   it as `NODE_IMAGE`; with internet, any `node:20` image does.
 * - npm packages come from the npm registry (reachable here through its client); a TLS-inspecting proxy's CA
 *   (NODE_EXTRA_CA_CERTS) is mounted into the dependency stage only.
 * - buildah runs rootful with vfs storage and chroot isolation (DESIGN.md §2): no daemon, no overlay mounts, nothing
 *   outside its own storage dirs.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdir, rename, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { buildBaseImage } from './base-images.ts';
import { makeTempDir } from './process.ts';
import { CACHE_DIR, findTool } from './tools.ts';

const run = promisify(execFile);
export const ROOT = fileURLToPath(new URL('../', import.meta.url));
export const CONTAINERFILE = join(ROOT, 'Containerfile');
const HINT = 'Install it with `apt-get install buildah skopeo busybox-static`.';

/** buildah's storage: one vfs store per directory pair; nothing else on the machine is touched. */
export interface BuildahStore {
  root: string;
  runroot: string;
}

export function defaultStore(): BuildahStore {
  return { root: join(CACHE_DIR, 'buildah', 'root'), runroot: join(CACHE_DIR, 'buildah', 'runroot') };
}

export async function buildah(store: BuildahStore, ...args: string[]): Promise<string> {
  const bin = findTool('buildah', 'FLUI_BUILDAH', HINT);
  const common = ['--storage-driver', 'vfs', '--root', store.root, '--runroot', store.runroot];
  try {
    const { stdout } = await run(bin, [...common, ...args], { maxBuffer: 64 << 20 });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; message: string };
    throw new Error(
      `buildah ${args[0]} failed: ${(e.stderr || e.stdout || e.message).trim().split('\n').slice(-15).join('\n')}`,
      {
        cause: err,
      },
    );
  }
}

/** Shared libraries a binary loads, as `ldd` resolves them on this machine. */
async function sharedLibraries(binary: string): Promise<string[]> {
  const { stdout } = await run('ldd', [binary]);
  return [...stdout.matchAll(/(?:=>\s*)?(\/\S+)\s+\(0x/g)].map((m) => m[1]!);
}

/** Copies `file` (and the file a symlink points to, under its own name too) into `rootfs` at the same path. */
async function copyInto(rootfs: string, file: string): Promise<void> {
  const to = join(rootfs, file);
  await mkdir(dirname(to), { recursive: true });
  await cp(file, to, { dereference: true, force: true });
}

/**
 * An OCI archive of `node:20` for the worker image: dev/base-images.ts's `node` (this machine's node binary, the
 * libraries `ldd` names for it, busybox, the `node` user) plus one layer of what the worker's build and run need
 * beyond it: npm (the Containerfile's `npm ci`) and the libraries the Temporal bridge loads that node does not
 * (librt). Cached in ~/.cache/flui/images/ by Node version; returns its path.
 */
export async function nodeBaseArchive(store: BuildahStore, log: (line: string) => void = () => {}): Promise<string> {
  const version = process.version;
  if (!version.startsWith('v20.'))
    throw new Error(`the node:20 base needs Node.js 20 on this machine, found ${version}`);
  const archive = join(CACHE_DIR, 'images', `node-${version.slice(1)}.oci.tar`);
  if (existsSync(archive)) return archive;
  const started = Date.now();
  const node = (await run('readlink', ['-f', process.execPath])).stdout.trim();
  const npmDir = join(dirname(dirname(node)), 'lib', 'node_modules', 'npm');
  if (!existsSync(join(npmDir, 'bin', 'npm-cli.js'))) throw new Error(`npm not found beside ${node} (${npmDir})`);
  const bridge = join(ROOT, 'node_modules', '@temporalio', 'core-bridge', 'releases');
  const bridgeBinary = join(
    bridge,
    `${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}-unknown-linux-gnu`,
    'index.node',
  );

  // Lowercase: buildah names the image it pulls from an OCI layout after the layout's path.
  const layout = join(tmpdir(), `flui-node-base-${process.pid}-${Date.now()}`);
  await mkdir(layout, { recursive: true });
  const extra = await makeTempDir('node-extra');
  try {
    await buildBaseImage('node', layout, '20');
    await cp(npmDir, join(extra, 'usr/local/lib/node_modules/npm'), { recursive: true, verbatimSymlinks: true });
    await mkdir(join(extra, 'usr/local/bin'), { recursive: true });
    await symlink('../lib/node_modules/npm/bin/npm-cli.js', join(extra, 'usr/local/bin/npm'));
    await symlink('../lib/node_modules/npm/bin/npx-cli.js', join(extra, 'usr/local/bin/npx'));
    const nodeLibs = new Set(await sharedLibraries(node));
    for (const lib of await sharedLibraries(bridgeBinary)) if (!nodeLibs.has(lib)) await copyInto(extra, lib);

    const ctr = (await buildah(store, 'from', '--quiet', `oci:${layout}:20`)).trim();
    try {
      await buildah(store, 'copy', '--quiet', ctr, `${extra}/`, '/');
      await buildah(
        store,
        'config',
        '--label',
        `org.opencontainers.image.description=node:20 from the build machine's Node.js ${version}, with npm`,
        ctr,
      );
      await mkdir(dirname(archive), { recursive: true });
      const partial = `${archive}.partial`;
      await rm(partial, { force: true });
      await buildah(store, 'commit', '--quiet', '--format', 'oci', '--rm', ctr, `oci-archive:${partial}`);
      await rename(partial, archive);
    } finally {
      await buildah(store, 'rm', ctr).catch(() => undefined);
    }
  } finally {
    await rm(layout, { recursive: true, force: true });
    await rm(extra, { recursive: true, force: true });
  }
  log(`node:20 base (${version}) archived in ${((Date.now() - started) / 1000).toFixed(1)}s: ${archive}`);
  return archive;
}

/** Copies an OCI archive into a registry (`HOST/repo:tag`), over plain HTTP unless `tlsVerify`. */
export async function seedImage(archive: string, ref: string, opts: { tlsVerify?: boolean } = {}): Promise<void> {
  const skopeo = findTool('skopeo', 'FLUI_SKOPEO', HINT);
  await run(skopeo, [
    'copy',
    '--quiet',
    `--dest-tls-verify=${opts.tlsVerify ?? false}`,
    `oci-archive:${archive}`,
    `docker://${ref}`,
  ]);
}

export interface WorkerImageOptions {
  store: BuildahStore;
  /** The `node:20` image to build on (`NODE_IMAGE`), e.g. one {@link seedImage} put in a local registry. */
  nodeImage: string;
  /** Name of the image in buildah's store. */
  tag: string;
  /** Pull the base over plain HTTP (a local registry). */
  insecureBase?: boolean;
  log?: (line: string) => void;
}

export interface WorkerImage {
  tag: string;
  id: string;
  /** Uncompressed size of every layer, base included. */
  sizeBytes: number;
  /** Of that, the base image's layers. */
  baseBytes: number;
  buildSeconds: number;
}

/** `npm run bundle`: dist/ up to date and the workflow bundle the image starts from. */
export async function buildDist(): Promise<void> {
  await run('npm', ['run', '--silent', 'bundle'], { cwd: ROOT, maxBuffer: 16 << 20 });
}

/** Builds the Containerfile with buildah (dist/ must be built: {@link buildDist}). */
export async function buildWorkerImage(opts: WorkerImageOptions): Promise<WorkerImage> {
  const say = opts.log ?? (() => {});
  if (!existsSync(join(ROOT, 'dist', 'workflows.bundle.js'))) {
    throw new Error('dist/workflows.bundle.js is missing: run `npm run bundle` first');
  }
  const started = Date.now();
  const args = [
    'bud',
    '--isolation',
    'chroot',
    '--pull=always',
    `--tls-verify=${!opts.insecureBase}`,
    '--build-arg',
    `NODE_IMAGE=${opts.nodeImage}`,
    '-f',
    CONTAINERFILE,
    '-t',
    opts.tag,
  ];
  // A TLS-inspecting proxy's CA for `npm ci`, mounted into the build's RUN steps only.
  const ca = process.env.NODE_EXTRA_CA_CERTS;
  if (ca && existsSync(ca))
    args.push(
      '--volume',
      `${ca}:/run/flui-build-ca.crt:ro`,
      '--build-arg',
      'NODE_EXTRA_CA_CERTS=/run/flui-build-ca.crt',
    );
  const registry = process.env.NPM_CONFIG_REGISTRY ?? process.env.npm_config_registry;
  if (registry) args.push('--build-arg', `NPM_CONFIG_REGISTRY=${registry}`);
  say(`building ${opts.tag} on ${opts.nodeImage}`);
  await buildah(opts.store, ...args, ROOT);
  const buildSeconds = (Date.now() - started) / 1000;
  const info = await imageInfo(opts.store, opts.tag);
  const base = await imageInfo(opts.store, opts.nodeImage).catch(() => undefined);
  return { tag: opts.tag, id: info.id, sizeBytes: info.size, baseBytes: base?.size ?? 0, buildSeconds };
}

/** Image id and uncompressed size (sum of its layers) in the store. */
export async function imageInfo(store: BuildahStore, image: string): Promise<{ id: string; size: number }> {
  const [line] = (await buildah(store, 'images', '--noheading', '--no-trunc', '--format', '{{.ID}} {{.Size}}', image))
    .trim()
    .split('\n');
  const [id = '', ...size] = (line ?? '').split(' ');
  return { id, size: parseSize(size.join(' ')) };
}

/** buildah's human sizes ("412 MB", "1.2 GB": decimal units) in bytes. */
export function parseSize(text: string): number {
  const m = /^([\d.]+)\s*([kMGT]?B)$/i.exec(text.trim());
  if (!m) throw new Error(`unreadable size "${text}"`);
  const unit = { B: 1, KB: 1e3, MB: 1e6, GB: 1e9, TB: 1e12 }[m[2]!.toUpperCase()] ?? 1;
  return Math.round(Number(m[1]) * unit);
}

/** The image's OCI config (User, Entrypoint, Env, WorkingDir, ExposedPorts). */
export async function imageConfig(
  store: BuildahStore,
  image: string,
): Promise<{
  User?: string;
  Entrypoint?: string[];
  Cmd?: string[];
  Env?: string[];
  WorkingDir?: string;
  ExposedPorts?: Record<string, unknown>;
}> {
  const inspected = JSON.parse(await buildah(store, 'inspect', '--type', 'image', image)) as {
    OCIv1: { config: Record<string, unknown> };
  };
  return inspected.OCIv1.config;
}

export const mb = (bytes: number) => `${(bytes / 1e6).toFixed(0)} MB`;

async function main(argv: string[]): Promise<void> {
  const push = argv.includes('--push') ? argv[argv.indexOf('--push') + 1] : undefined;
  const tlsVerify = !argv.includes('--tls-verify=false');
  const store = defaultStore();
  const say = (line: string) => process.stderr.write(`${line}\n`);
  say('npm run bundle (dist/ and the workflow bundle)');
  await buildDist();
  let nodeImage = process.env.NODE_IMAGE;
  let registry: { stop(): Promise<void> } | undefined;
  if (!nodeImage) {
    // Offline: this machine's Node.js as node:20, served by a throw-away local registry for the build.
    const { startRegistry } = await import('./registry.ts');
    const local = await startRegistry();
    registry = local;
    nodeImage = `${local.host}/library/node:20`;
    await seedImage(await nodeBaseArchive(store, say), nodeImage);
  }
  try {
    const image = await buildWorkerImage({
      store,
      nodeImage,
      tag: 'flui-worker:dev',
      insecureBase: !!registry,
      log: say,
    });
    say(
      `built ${image.tag} in ${image.buildSeconds.toFixed(1)}s: ${mb(image.sizeBytes)} ` +
        `(node:20 base ${mb(image.baseBytes)}, Flui and its dependencies ${mb(image.sizeBytes - image.baseBytes)})`,
    );
    if (push) {
      await buildah(store, 'push', `--tls-verify=${tlsVerify}`, image.tag, `docker://${push}`);
      say(`pushed ${push}`);
    }
  } finally {
    await registry?.stop();
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`worker image: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
