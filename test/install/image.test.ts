/**
 * The worker image, built from the Containerfile with real buildah (vfs storage, chroot isolation) on a `node:20`
 * seeded into a real local registry from an OCI archive (dev/worker-image.ts), then pushed there, inspected, and
 * started against a real Temporal dev server, with buildah run and with crun as the pod runs it (read-only root,
 * /tmp on tmpfs, no capabilities): it answers /readyz 200 as the numeric non-root user of the image.
 * Sizes are printed (BENCHMARKS.md), not asserted.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { freePort, makeTempDir, startServerProcess, type ServerProcess } from '../../dev/process.ts';
import { startDevServer, type DevServer } from '../../dev/temporal.ts';
import { findTool } from '../../dev/tools.ts';
import {
  buildah,
  buildDist,
  buildWorkerImage,
  imageConfig,
  mb,
  nodeBaseArchive,
  ROOT,
  seedImage,
  type BuildahStore,
  type WorkerImage,
} from '../../dev/worker-image.ts';
import { startRegistry, type LocalRegistry } from '../helpers/registry.ts';
import { workerArgs } from '../helpers/worker-process.ts';

const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  dependencies: Record<string, string>;
};

const run = promisify(execFile);

const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as {
  packages: Record<string, { dev?: boolean }>;
};

/** Top-level package names in a node_modules dir (`@scope/name` for scoped ones). */
function packagesIn(dir: string): string[] {
  return readdirSync(dir).flatMap((name) =>
    name.startsWith('@') ? readdirSync(join(dir, name)).map((n) => `${name}/${n}`) : name.startsWith('.') ? [] : [name],
  );
}

interface OciSpec {
  root: { path: string; readonly: boolean };
  process: Record<string, unknown>;
  mounts: { destination: string; type: string; source: string; options?: string[] }[];
  linux: { namespaces: { type: string }[]; resources?: unknown };
}

/** The pid of the `node` process among the descendants of `pid`, from /proc. */
function nodeUnder(pid: number): number | undefined {
  const parent = new Map<number, number>();
  for (const entry of readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      parent.set(Number(entry), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // gone meanwhile
    }
  }
  const under = (p: number): boolean => p === pid || (parent.has(p) && p > 1 && under(parent.get(p)!));
  return [...parent.keys()].find((p) => {
    if (p === pid || !under(p)) return false;
    try {
      return readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0')[0]?.endsWith('node');
    } catch {
      return false;
    }
  });
}

function uidOf(pid: number): number {
  return Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
}

describe('the worker image (Containerfile, built with buildah)', () => {
  let dir: string;
  let store: BuildahStore;
  let registry: LocalRegistry;
  let image: WorkerImage;
  let ctr = '';
  let rootfs = '';

  before(async () => {
    dir = await makeTempDir('worker-image');
    store = { root: join(dir, 'root'), runroot: join(dir, 'runroot') };
    registry = await startRegistry();
    const t0 = performance.now();
    const nodeImage = `${registry.host}/library/node:20`;
    await seedImage(await nodeBaseArchive(store), nodeImage);
    await buildDist();
    console.log(`# node:20 seeded and dist/ bundled in ${((performance.now() - t0) / 1000).toFixed(1)}s`);
    image = await buildWorkerImage({ store, nodeImage, tag: 'flui-worker:test', insecureBase: true });
    console.log(
      `# worker image built in ${image.buildSeconds.toFixed(1)}s: ${mb(image.sizeBytes)} uncompressed ` +
        `(node:20 base ${mb(image.baseBytes)}, Flui and its production dependencies ${mb(image.sizeBytes - image.baseBytes)})`,
    );
    ctr = (await buildah(store, 'from', '--quiet', '--pull=never', image.tag)).trim();
    rootfs = (await buildah(store, 'mount', ctr)).trim();
  });

  after(async () => {
    if (ctr) await buildah(store, 'rm', ctr).catch(() => undefined);
    await registry?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('holds the compiled worker, the workflow bundle and production dependencies only', () => {
    const app = join(rootfs, 'app');
    assert.deepEqual(readdirSync(app).sort(), ['dist', 'node_modules', 'package.json']);
    assert.ok(existsSync(join(app, 'dist', 'worker.js')));
    assert.ok(existsSync(join(app, 'dist', 'workflows.bundle.js')), 'prebundled: the pod starts without webpack');
    assert.ok(!existsSync(join(app, 'dist', '.tsbuildinfo')));
    const installed = packagesIn(join(app, 'node_modules'));
    // The lock file marks every package only the dev tree needs (`dev: true`): none may be here. (A dev dependency of
    // ours that a production package also needs, such as @temporalio/proto, is not marked and rightly present.)
    const devOnly = Object.entries(lock.packages)
      .filter(([path, entry]) => entry.dev && /^node_modules\/(@[^/]+\/)?[^/]+$/.test(path))
      .map(([path]) => path.slice('node_modules/'.length));
    assert.ok(devOnly.length > 50, `the lock file lists the dev-only packages (${devOnly.length})`);
    assert.deepEqual(
      installed.filter((name) => devOnly.includes(name)),
      [],
      'no dev-only package in the image',
    );
    for (const tool of ['typescript', 'eslint', 'tsx', 'esbuild', 'prettier', 'fast-check', 'playwright-core']) {
      assert.ok(!installed.includes(tool), `${tool} is a dev tool`);
    }
    assert.deepEqual(
      installed.filter((n) => n.startsWith('@flui/')),
      [],
      'no workspace package (emulators)',
    );
    for (const name of Object.keys(pkg.dependencies)) assert.ok(installed.includes(name), `${name} is installed`);
    // The Temporal bridge keeps only this system's binary.
    const releases = readdirSync(join(app, 'node_modules/@temporalio/core-bridge/releases'));
    assert.deepEqual(releases, [`${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}-unknown-linux-gnu`]);
    console.log(
      `# ${installed.length} packages in the image's node_modules, none of the ${devOnly.length} dev-only ones`,
    );
  });

  it('runs `node dist/worker.js` as `npm run worker` does, as a numeric non-root user', async () => {
    const config = await imageConfig(store, image.tag);
    const [user, group] = (config.User ?? '').split(':');
    assert.match(user ?? '', /^[1-9]\d*$/, 'a numeric uid, not root: runAsNonRoot can check it');
    assert.match(group ?? '', /^[1-9]\d*$/);
    assert.equal(config.WorkingDir, '/app');
    const env = Object.fromEntries(
      (config.Env ?? []).map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]),
    );
    // npm run worker's command line: its V8 flags (NODE_OPTIONS here, so a pod can change them) and its script.
    const [script, ...flags] = workerArgs({}).reverse();
    assert.deepEqual(config.Entrypoint, ['node', script]);
    assert.deepEqual(env.NODE_OPTIONS?.split(' '), flags.reverse());
    assert.equal(env.FLUI_WORKFLOW_BUNDLE, '/app/dist/workflows.bundle.js');
    assert.equal(env.HOME, '/tmp', 'HOME on the emptyDir: the root filesystem is read-only in a pod');
    assert.deepEqual(Object.keys(config.ExposedPorts ?? {}).sort(), ['8080/tcp', '9464/tcp']);
  });

  it('pushes to a registry (what a cluster pulls, compressed)', async () => {
    const ref = `${registry.host}/flui/worker:test`;
    const t0 = performance.now();
    await buildah(store, 'push', '--quiet', '--tls-verify=false', image.tag, `docker://${ref}`);
    const res = await fetch(`${registry.url}/v2/flui/worker/manifests/test`, {
      headers: {
        accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json',
      },
    });
    assert.equal(res.status, 200);
    const manifest = (await res.json()) as { layers: { size: number }[] };
    const pulled = manifest.layers.reduce((sum, l) => sum + l.size, 0);
    assert.ok(manifest.layers.length >= 2);
    console.log(
      `# pushed in ${((performance.now() - t0) / 1000).toFixed(1)}s: ${manifest.layers.length} layers, ${mb(pulled)} compressed`,
    );
  });

  it('starts against a real Temporal server and answers /readyz 200', async () => {
    let temporal: DevServer | undefined;
    let worker: ServerProcess | undefined;
    try {
      temporal = await startDevServer({ uiPort: false });
      const port = await freePort();
      const ops = `http://127.0.0.1:${port}`;
      const logFile = join(dir, 'worker.log');
      const t0 = performance.now();
      // buildah run, chroot isolation, host network: the image's entrypoint, user and environment, plus the settings
      // a pod gets from its ConfigMap. Loopback only here (the image listens on 0.0.0.0 by default).
      const config = await imageConfig(store, image.tag);
      const settings = {
        TEMPORAL_ADDRESS: temporal.address,
        TEMPORAL_NAMESPACE: temporal.namespace,
        FLUI_TASK_QUEUE: 'image-test',
        FLUI_OPS_HOST: '127.0.0.1',
        FLUI_OPS_PORT: String(port),
      };
      worker = await startServerProcess({
        name: 'worker from the image',
        command: 'buildah',
        args: [
          '--storage-driver',
          'vfs',
          '--root',
          store.root,
          '--runroot',
          store.runroot,
          'run',
          '--isolation',
          'chroot',
          '--user',
          config.User!,
          ...Object.entries(settings).flatMap(([k, v]) => ['--env', `${k}=${v}`]),
          ctr,
          '--',
          ...config.Entrypoint!,
        ],
        logFile,
        ready: async () => (await fetch(`${ops}/readyz`, { signal: AbortSignal.timeout(1000) })).status === 200,
        timeoutMs: 90_000,
      });
      console.log(`# worker from the image ready in ${((performance.now() - t0) / 1000).toFixed(1)}s`);
      const ready = await fetch(`${ops}/readyz`);
      assert.equal(ready.status, 200);
      assert.deepEqual(await ready.json(), { ready: true });
      assert.equal((await fetch(`${ops}/livez`)).status, 200);
      const log = await readFile(logFile, 'utf8');
      assert.match(log, /Flui worker polling task queue "image-test"/);
      assert.doesNotMatch(log, /webpack|bundling/i, 'the prebundled workflow code, no bundling at start');
      // SIGTERM to the worker itself (PID 1 of a pod's container gets it; buildah would SIGKILL its child) drains and
      // stops it; buildah run then exits.
      const node = nodeUnder(worker.child.pid!);
      assert.ok(node, 'the node process under buildah run');
      assert.equal(uidOf(node), Number(config.User!.split(':')[0]), 'runs as the image user');
      const exited = new Promise((resolve) => worker!.child.once('exit', resolve));
      process.kill(node, 'SIGTERM');
      await exited;
      assert.match(await readFile(logFile, 'utf8'), /Flui worker stopped/);
      await worker.stop();
      worker = undefined;
    } finally {
      await worker?.stop(1000);
      await temporal?.stop();
    }
  });
  it('runs as the pod does (crun: read-only root, /tmp on tmpfs, no capabilities) and answers /readyz 200', async () => {
    const crun = findTool('crun', 'FLUI_CRUN', 'Install it with `apt-get install crun`.');
    let temporal: DevServer | undefined;
    let worker: ServerProcess | undefined;
    const id = `flui-image-test-${process.pid}`;
    try {
      temporal = await startDevServer({ uiPort: false });
      const port = await freePort();
      const ops = `http://127.0.0.1:${port}`;
      const config = await imageConfig(store, image.tag);
      const [uid, gid] = config.User!.split(':').map(Number);
      const bundle = join(dir, 'bundle');
      await mkdir(bundle, { recursive: true });
      await run(crun, ['spec'], { cwd: bundle });
      const spec = JSON.parse(await readFile(join(bundle, 'config.json'), 'utf8')) as OciSpec;
      const settings = [
        `TEMPORAL_ADDRESS=${temporal.address}`,
        'FLUI_TASK_QUEUE=image-test-crun',
        'FLUI_OPS_HOST=127.0.0.1',
        `FLUI_OPS_PORT=${port}`,
      ];
      // The Deployment's securityContext: readOnlyRootFilesystem, the emptyDir on /tmp, capabilities drop ALL,
      // allowPrivilegeEscalation false, the image's numeric user. The host's network (Temporal on its loopback).
      spec.root = { path: rootfs, readonly: true };
      spec.process = {
        ...spec.process,
        terminal: false,
        args: [...config.Entrypoint!, ...(config.Cmd ?? [])],
        cwd: config.WorkingDir ?? '/',
        user: { uid: uid!, gid: gid! },
        env: [...(config.Env ?? []), ...settings],
        capabilities: { bounding: [], effective: [], inheritable: [], permitted: [], ambient: [] },
        noNewPrivileges: true,
      };
      spec.linux.namespaces = spec.linux.namespaces.filter((n) => n.type !== 'network');
      delete spec.linux.resources;
      spec.mounts = [
        ...spec.mounts.filter((m) => m.destination !== '/sys/fs/cgroup'),
        { destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=1777', 'size=64m'] },
      ];
      await writeFile(join(bundle, 'config.json'), JSON.stringify(spec));
      const logFile = join(dir, 'worker-crun.log');
      const t0 = performance.now();
      // No cgroups of its own (this machine's hybrid hierarchy is one crun 1.8 refuses): a private mount namespace
      // without the cgroup2 mount, and crun's cgroup manager off.
      worker = await startServerProcess({
        name: 'worker from the image (crun)',
        command: 'unshare',
        args: [
          '--mount',
          'sh',
          '-c',
          `umount /sys/fs/cgroup/unified 2>/dev/null; exec "$0" --cgroup-manager=disabled run --bundle "$1" "$2"`,
          crun,
          bundle,
          id,
        ],
        logFile,
        ready: async () => (await fetch(`${ops}/readyz`, { signal: AbortSignal.timeout(1000) })).status === 200,
        timeoutMs: 90_000,
      });
      console.log(
        `# worker from the image under crun, read-only root, ready in ${((performance.now() - t0) / 1000).toFixed(1)}s`,
      );
      assert.deepEqual(await (await fetch(`${ops}/readyz`)).json(), { ready: true });
      const exited = new Promise((resolve) => worker!.child.once('exit', resolve));
      await run(crun, ['kill', id, 'TERM']);
      await exited;
      assert.match(await readFile(logFile, 'utf8'), /Flui worker stopped/);
      await worker.stop();
      worker = undefined;
    } finally {
      await worker?.stop(1000);
      await run(crun, ['delete', '--force', id]).catch(() => undefined);
      await temporal?.stop();
    }
  });
});
