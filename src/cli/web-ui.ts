import { webUiBase } from '../client/index.ts';
import type { ClientConfig } from '../config.ts';

/** Where deploys are linked in Temporal Web UI, when that is known. */
export function webUi(config: ClientConfig): string | undefined {
  return webUiBase(config.temporal);
}
