/**
 * A real Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler) with fake nodes,
 * run by kwokctl's binary runtime from the binaries `npm run setup` builds. Deployments go through the real
 * deployment controller; kwok plays the kubelet (see kwok-stages.yaml: pods become Ready, except pods of images whose
 * repository path has a component starting with `fail-`, which crash-loop and never become Ready).
 *
 * Shared by the test helpers and the local sandbox, so:
 * - every port comes from the OS and is handed to kwokctl (its own allocator scans down from 32767 and two clusters
 *   created at once would pick the same ports), and every component listens on 127.0.0.1 only;
 * - everything lives in one work dir (KWOK_WORKDIR, the kubeconfig, kubectl's cache): nothing is written under ~;
 * - kwokctl daemonizes the control plane, so a process killed before `stop()` would leave it running: each cluster
 *   registers its owner's pid, and the next start deletes clusters whose owner is gone.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { cp, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { freePort, makeTempDir } from './process.ts';
import { BIN_DIR, findTool } from './tools.ts';

const run = promisify(execFile);
export const KWOK_STAGES = fileURLToPath(new URL('./kwok-stages.yaml', import.meta.url));
/** Pods whose image has a repository path component starting with this never become Ready (kwok-stages.yaml). */
export const FAILING_IMAGE_MARKER = 'fail-';

/** Where clusters register their owner process, so a later start can clean up after a crash. */
const OWNERS_DIR = join(tmpdir(), 'flui-kwok-owners');

export interface KwokOptions {
  /** kwokctl's work dir (clusters/<name>/… inside); a temp dir, removed by `stop()`, when omitted. */
  workDir?: string;
  /** Cluster name (DNS label); unique by default. */
  name?: string;
  /** Fake nodes to create (default 3). */
  nodes?: number;
  /** Progress messages, one line each. */
  log?: (line: string) => void;
  /** How long the control plane and the nodes may take to become ready (default 120 s). */
  timeoutSeconds?: number;
}

export interface KwokCluster {
  name: string;
  /** Admin kubeconfig of this cluster (client certificates; nothing secret leaves the work dir). */
  kubeconfigPath: string;
  /** API server URL, e.g. https://127.0.0.1:PORT */
  server: string;
  workDir: string;
  /** The control plane's logs: etcd.log, kube-apiserver.log, kube-controller-manager.log, … */
  logDir: string;
  /** Runs kubectl (the one setup built) against this cluster; resolves with stdout, rejects with stderr. */
  kubectl(...args: string[]): Promise<string>;
  /** Copies the control plane's logs to a new temp dir (they go with the cluster) and returns its path. */
  saveLogs(): Promise<string>;
  /** Deletes the cluster (its processes and files). Safe to call twice. */
  stop(): Promise<void>;
}

export function kubeBinaries() {
  const hint = 'Build it with `npm run setup -- kubernetes`.';
  return {
    kwokctl: findTool('kwokctl', 'FLUI_KWOKCTL', hint),
    kwok: findTool('kwok', 'FLUI_KWOK', hint),
    etcd: findTool('etcd', 'FLUI_ETCD', hint),
    apiserver: findTool('kube-apiserver', 'FLUI_KUBE_APISERVER', hint),
    controllerManager: findTool('kube-controller-manager', 'FLUI_KUBE_CONTROLLER_MANAGER', hint),
    scheduler: findTool('kube-scheduler', 'FLUI_KUBE_SCHEDULER', hint),
    kubectl: findTool('kubectl', 'FLUI_KUBECTL', hint),
  };
}

interface Owner {
  pid: number;
  name: string;
  workDir: string;
  /** True when the work dir was created for this cluster and goes with it. */
  ownsWorkDir: boolean;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function kwokctlRunner(kwokctl: string, workDir: string, name: string) {
  const env = { ...process.env, KWOK_WORKDIR: workDir, PATH: `${BIN_DIR}:${process.env.PATH ?? ''}` };
  return (...args: string[]) => run(kwokctl, ['--name', name, ...args], { env, maxBuffer: 16 << 20 });
}

/** Deletes a cluster and the files Flui put beside it. Never throws. */
async function deleteCluster(kwokctl: string, owner: Owner): Promise<void> {
  const files = join(owner.workDir, `flui-${owner.name}`);
  // --kubeconfig: kwokctl would otherwise edit ~/.kube/config to remove the cluster's context.
  await kwokctlRunner(kwokctl, owner.workDir, owner.name)(
    'delete',
    'cluster',
    '--kubeconfig',
    join(files, 'kubeconfig'),
  ).catch(() => undefined);
  await rm(owner.ownsWorkDir ? owner.workDir : files, { recursive: true, force: true });
  await rm(join(owner.workDir, 'clusters', owner.name), { recursive: true, force: true });
  await rm(join(OWNERS_DIR, `${owner.name}.json`), { force: true });
}

/** Deletes clusters whose owning process died without stopping them. Returns their names. */
export async function removeOrphanedClusters(kwokctl = kubeBinaries().kwokctl): Promise<string[]> {
  const removed: string[] = [];
  for (const file of await readdir(OWNERS_DIR).catch(() => [] as string[])) {
    if (!file.endsWith('.json')) continue;
    let owner: Owner;
    try {
      owner = JSON.parse(await readFile(join(OWNERS_DIR, file), 'utf8')) as Owner;
    } catch {
      continue; // being written right now, or not ours to judge
    }
    if (alive(owner.pid)) continue;
    await deleteCluster(kwokctl, owner);
    removed.push(owner.name);
  }
  return removed;
}

function lastLines(text: string, n: number): string {
  return text.trim().split('\n').slice(-n).join('\n');
}

export async function startKwokCluster(opts: KwokOptions = {}): Promise<KwokCluster> {
  const bin = kubeBinaries();
  const say = opts.log ?? (() => undefined);
  const timeoutSeconds = opts.timeoutSeconds ?? 120;

  const orphans = await removeOrphanedClusters(bin.kwokctl);
  if (orphans.length) say(`removed clusters left by crashed runs: ${orphans.join(', ')}`);

  const workDir = opts.workDir ?? (await makeTempDir('kwok'));
  const name = opts.name ?? `flui-${randomBytes(3).toString('hex')}`;
  const owner: Owner = { pid: process.pid, name, workDir, ownsWorkDir: !opts.workDir };
  const files = join(workDir, `flui-${name}`);
  const clusterDir = join(workDir, 'clusters', name);
  const logDir = join(clusterDir, 'logs');
  await mkdir(files, { recursive: true });
  await mkdir(OWNERS_DIR, { recursive: true });
  await writeFile(join(OWNERS_DIR, `${name}.json`), JSON.stringify(owner));
  const kwokctl = kwokctlRunner(bin.kwokctl, workDir, name);
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await deleteCluster(bin.kwokctl, owner);
  };

  try {
    // A cluster of the same name left in this work dir would hold its ports: remove it first.
    if (existsSync(clusterDir)) await kwokctl('delete', 'cluster', '--kubeconfig', join(files, 'kubeconfig'));

    const ports = {
      etcdPeerPort: await freePort(),
      etcdPort: await freePort(),
      kubeApiserverPort: await freePort(),
      kubeControllerManagerPort: await freePort(),
      kubeSchedulerPort: await freePort(),
      kwokControllerPort: await freePort(),
    };
    const config = join(files, 'kwokctl.yaml');
    await writeFile(
      config,
      JSON.stringify({
        apiVersion: 'config.kwok.x-k8s.io/v1alpha1',
        kind: 'KwokctlConfiguration',
        options: { bindAddress: '127.0.0.1', ...ports },
        // The API server's default Service range is a /24: 254 Services, one per app, so a bench of 1,000 apps
        // would fail with "failed to allocate a serviceIP: range is full". A /16 holds 65,534.
        componentsPatches: [
          { name: 'kube-apiserver', extraArgs: [{ key: 'service-cluster-ip-range', value: '10.96.0.0/16' }] },
        ],
      }),
    );

    const started = Date.now();
    say(`cluster ${name}: starting etcd, kube-apiserver, controller-manager, scheduler and kwok in ${workDir}`);
    try {
      await kwokctl(
        'create',
        'cluster',
        '--runtime',
        'binary',
        '--config',
        config,
        '--config',
        KWOK_STAGES,
        '--kube-apiserver-binary',
        bin.apiserver,
        '--kube-controller-manager-binary',
        bin.controllerManager,
        '--kube-scheduler-binary',
        bin.scheduler,
        '--etcd-binary',
        bin.etcd,
        '--kwok-controller-binary',
        bin.kwok,
        '--wait',
        `${timeoutSeconds}s`,
        // kwokctl adds every cluster to ~/.kube/config by default; keep the user's kubeconfig untouched.
        '--kubeconfig',
        join(files, 'kubeconfig'),
      );
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      const logs = await readFile(join(logDir, 'kube-apiserver.log'), 'utf8').catch(() => '');
      throw new Error(
        `kwokctl could not start cluster ${name}: ${lastLines(e.stderr ?? e.message, 5)}` +
          (logs ? `\nkube-apiserver.log (last lines):\n${lastLines(logs, 10)}` : ''),
        { cause: err },
      );
    }
    const kubeconfigPath = join(clusterDir, 'kubeconfig.yaml');
    const server = /server: (\S+)/.exec(readFileSync(kubeconfigPath, 'utf8'))?.[1] ?? '';
    say(`cluster ${name}: control plane ready at ${server} in ${((Date.now() - started) / 1000).toFixed(1)}s`);

    const kubectl = async (...args: string[]) => {
      // --cache-dir: kubectl would otherwise keep its discovery cache in ~/.kube/cache.
      const common = ['--kubeconfig', kubeconfigPath, '--cache-dir', join(files, 'kubectl-cache')];
      const { stdout } = await run(bin.kubectl, [...common, ...args], { maxBuffer: 16 << 20 });
      return stdout;
    };
    const nodes = opts.nodes ?? 3;
    await kwokctl('scale', 'node', '--replicas', String(nodes));
    await kubectl('wait', '--for=condition=Ready', 'node', '--all', `--timeout=${timeoutSeconds}s`);
    // Pods are refused until the service account controller has created the namespace's `default` account.
    await kubectl('wait', '--for=create', 'serviceaccount/default', '-n', 'default', `--timeout=${timeoutSeconds}s`);
    say(`cluster ${name}: ${nodes} fake nodes ready in ${((Date.now() - started) / 1000).toFixed(1)}s`);

    const saveLogs = async () => {
      const dir = await makeTempDir(`kwok-logs-${name}`);
      await cp(logDir, dir, { recursive: true });
      return dir;
    };
    return { name, kubeconfigPath, server, workDir, logDir, kubectl, saveLogs, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
