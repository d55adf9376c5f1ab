/**
 * Image history per app, kept in the cluster beside the app (ConfigMap `flui-history-<app>`): which digests were
 * rolled out, when, by which deploy and from which commit, and with what workload settings, so `flui images` can list
 * them and a rollback can re-apply any of them exactly. Entries are keyed by deploy id: recording twice is a no-op.
 */
import type { Workload } from '../manifest/schema.ts';
import { kubeClients, MANAGED_BY, statusOf, type KubeClients } from './rollout.ts';

export const HISTORY_LIMIT = 50;
/** ConfigMaps hold at most 1 MiB; big env maps in the recorded specs give way to the newest entries first. */
const HISTORY_MAX_BYTES = 768 * 1024;

export interface HistoryEntry {
  deployId: string;
  digest: string;
  image: string;
  commit?: string;
  rolledOutAt: string;
  outcome: 'succeeded' | 'failed';
  /** The deploy's attempt that rolled it out (`flui retry` starts another); absent in entries before attempts. */
  attempt?: number;
  /** Why a failed rollout failed, in Kubernetes' words (`ProgressDeadlineExceeded: ReplicaSet "x" has ...`). */
  reason?: string;
  /** For a rollback: the deploy whose recorded spec was re-applied. */
  restoredFrom?: string;
  /** The workload settings it ran with, so a rollback re-applies the whole object, not just the image. */
  workload: Workload;
}

export interface ImageListing extends Omit<HistoryEntry, 'workload'> {
  current: boolean;
}

export function historyName(app: string): string {
  return `flui-history-${app}`.slice(0, 253);
}

export async function readHistory(k: KubeClients, namespace: string, app: string): Promise<HistoryEntry[]> {
  try {
    const cm = await k.core.readNamespacedConfigMap({ name: historyName(app), namespace });
    return JSON.parse(cm.data?.['history.json'] ?? '[]') as HistoryEntry[];
  } catch (err) {
    if (statusOf(err) === 404) return [];
    throw err;
  }
}

/** Adds or replaces the entry of `entry.deployId`, newest first, keeping {@link HISTORY_LIMIT} entries. */
export async function recordHistory(
  k: KubeClients,
  namespace: string,
  app: string,
  entry: HistoryEntry,
): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    let resourceVersion: string | undefined;
    let entries: HistoryEntry[] = [];
    try {
      const cm = await k.core.readNamespacedConfigMap({ name: historyName(app), namespace });
      resourceVersion = cm.metadata?.resourceVersion;
      entries = JSON.parse(cm.data?.['history.json'] ?? '[]') as HistoryEntry[];
    } catch (err) {
      if (statusOf(err) !== 404) throw err;
    }
    const next = [entry, ...entries.filter((e) => e.deployId !== entry.deployId)].slice(0, HISTORY_LIMIT);
    while (next.length > 1 && Buffer.byteLength(JSON.stringify(next)) > HISTORY_MAX_BYTES) next.pop();
    const body = {
      metadata: {
        name: historyName(app),
        namespace,
        labels: { 'app.kubernetes.io/name': app, ...MANAGED_BY },
        ...(resourceVersion ? { resourceVersion } : {}),
      },
      data: { 'history.json': JSON.stringify(next) },
    };
    try {
      if (resourceVersion) await k.core.replaceNamespacedConfigMap({ name: historyName(app), namespace, body });
      else await k.core.createNamespacedConfigMap({ namespace, body });
      return;
    } catch (err) {
      // Optimistic concurrency: someone else wrote in between; read again.
      if (attempt < 5 && (statusOf(err) === 409 || statusOf(err) === 422)) continue;
      throw err;
    }
  }
}

export interface ListImagesOptions {
  /** Path of the kubeconfig; KUBECONFIG or ~/.kube/config when omitted. */
  kubeconfig?: string;
  namespace: string;
  app: string;
}

/**
 * The history as `flui images` shows it: newest first, with the entry of the image the Deployment runs now marked
 * `current`. A rollback takes `digest` (or a unique prefix of it) from here.
 */
export async function listImages(opts: ListImagesOptions): Promise<ImageListing[]>;
export async function listImages(k: KubeClients, namespace: string, app: string): Promise<ImageListing[]>;
export async function listImages(
  a: KubeClients | ListImagesOptions,
  ns?: string,
  name?: string,
): Promise<ImageListing[]> {
  const [k, namespace, app] = 'namespace' in a ? [kubeClients(a.kubeconfig), a.namespace, a.app] : [a, ns!, name!];
  const entries = await readHistory(k, namespace, app);
  let running: string | undefined;
  try {
    const d = await k.apps.readNamespacedDeployment({ name: app, namespace });
    running = d.spec?.template.spec?.containers[0]?.image;
  } catch (err) {
    if (statusOf(err) !== 404) throw err;
  }
  let marked = false;
  return entries.map(({ workload: _w, ...e }) => {
    const current = !marked && e.outcome === 'succeeded' && e.image === running;
    if (current) marked = true;
    return { ...e, current };
  });
}
