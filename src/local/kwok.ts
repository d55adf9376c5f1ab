/**
 * A real Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler) with fake nodes,
 * run by kwokctl's binary runtime from the binaries `npm run setup` builds. Deployments go through the real
 * deployment controller; kwok plays the kubelet (see kwok-stages.yaml, including pods that never become ready).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { readFileSync } from 'node:fs';
import { makeTempDir } from './process.ts';
import { BIN_DIR, findTool } from './tools.ts';

const run = promisify(execFile);
export const KWOK_STAGES = fileURLToPath(new URL('./kwok-stages.yaml', import.meta.url));

export interface KwokOptions {
  /** kwokctl's work dir (clusters/<name>/… inside); a temp dir when omitted. */
  workDir?: string;
  name?: string;
  nodes?: number;
  log?: (line: string) => void;
}

export interface KwokCluster {
  name: string;
  kubeconfigPath: string;
  /** API server URL, e.g. https://127.0.0.1:PORT */
  server: string;
  workDir: string;
  /** Runs kubectl (the one setup built) against this cluster. */
  kubectl(...args: string[]): Promise<string>;
  stop(): Promise<void>;
}

export function kubeBinaries() {
  const hint = 'Build it with `npm run setup` (step kubernetes).';
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

export async function startKwokCluster(opts: KwokOptions = {}): Promise<KwokCluster> {
  const bin = kubeBinaries();
  const say = opts.log ?? (() => undefined);
  const workDir = opts.workDir ?? (await makeTempDir('kwok'));
  await mkdir(workDir, { recursive: true });
  const name = opts.name ?? `flui-${randomBytes(3).toString('hex')}`;
  const env = { ...process.env, KWOK_WORKDIR: workDir, PATH: `${BIN_DIR}:${process.env.PATH ?? ''}` };
  const kwokctl = (...args: string[]) => run(bin.kwokctl, ['--name', name, ...args], { env, maxBuffer: 16 << 20 });

  const started = Date.now();
  // A cluster left behind by a crashed run of the same work dir would hold its ports: remove it first.
  await kwokctl('delete', 'cluster').catch(() => undefined);
  try {
    await kwokctl(
      'create',
      'cluster',
      '--runtime',
      'binary',
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
      '60s',
      // kwokctl adds every cluster to ~/.kube/config by default; keep the user's kubeconfig untouched.
      '--kubeconfig',
      join(workDir, `${name}.kubeconfig`),
    );
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    await kwokctl('delete', 'cluster').catch(() => undefined);
    throw new Error(
      `kwokctl could not start the cluster: ${(e.stderr ?? e.message).trim().split('\n').slice(-5).join('\n')}`,
      { cause: err },
    );
  }
  await kwokctl('scale', 'node', '--replicas', String(opts.nodes ?? 3));
  const kubeconfigPath = join(workDir, 'clusters', name, 'kubeconfig.yaml');
  const server = /server: (\S+)/.exec(readFileSync(kubeconfigPath, 'utf8'))?.[1] ?? '';
  say(`cluster ${name} ready in ${((Date.now() - started) / 1000).toFixed(1)}s`);

  return {
    name,
    kubeconfigPath,
    server,
    workDir,
    async kubectl(...args: string[]) {
      const { stdout } = await run(bin.kubectl, ['--kubeconfig', kubeconfigPath, ...args], { maxBuffer: 16 << 20 });
      return stdout;
    },
    async stop() {
      await kwokctl('delete', 'cluster').catch(() => undefined);
      if (!opts.workDir) await rm(workDir, { recursive: true, force: true });
    },
  };
}
