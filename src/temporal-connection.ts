/**
 * The worker's and the builder's connection to Temporal. Both poll task queues with the SDK's native connection, and
 * both say the same thing when Temporal does not answer: where they looked, whether that was the default, and what to
 * set (each with its own next step).
 */
import { NativeConnection } from '@temporalio/worker';
import { ConfigError, type Config } from './config.ts';

export async function connectNative(temporal: Config['temporal'], nextStep: string): Promise<NativeConnection> {
  const { address, tls, apiKey, metadata } = temporal;
  try {
    return await NativeConnection.connect({ address, tls, apiKey, metadata });
  } catch (err) {
    throw new ConfigError(
      `cannot reach Temporal at ${address}${temporal.addressIsDefault ? ' (the default: TEMPORAL_ADDRESS is not set)' : ''}: ` +
        `${(err as Error).message}. ${nextStep}`,
    );
  }
}
