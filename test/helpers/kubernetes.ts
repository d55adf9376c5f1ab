/** A real Kubernetes control plane (kwok, fake nodes) per suite: see src/local/kwok.ts. */
import { startKwokCluster, type KwokCluster } from '../../src/local/kwok.ts';
import { useServer } from './suite.ts';

export function useCluster(): () => KwokCluster {
  return useServer(() => startKwokCluster());
}

export type { KwokCluster };
