/**
 * A real Kubernetes control plane (kwok, fake nodes) per suite: see dev/kwok.ts. When a test of the suite
 * fails, the control plane's logs are copied to a temp dir (the cluster's own go with it) and the path is printed.
 */
import { after, afterEach, before } from 'node:test';
import { startKwokCluster, type KwokCluster, type KwokOptions } from '../../dev/kwok.ts';

export function useCluster(opts: KwokOptions = {}): () => KwokCluster {
  let cluster: KwokCluster | undefined;
  let failed = false;
  before(async () => {
    cluster = await startKwokCluster(opts);
  });
  afterEach((t) => {
    if ('passed' in t && !t.passed) failed = true;
  });
  after(async () => {
    if (cluster && failed) {
      console.error(`kwok cluster ${cluster.name}: control plane logs kept in ${await cluster.saveLogs()}`);
    }
    await cluster?.stop();
  });
  return () => {
    if (!cluster) throw new Error('cluster not started: call the getter inside a test, not at module load');
    return cluster;
  };
}

export type { KwokCluster };
