/**
 * The registry activity: resolve an image reference to the digest the registry holds, so every deploy is pinned
 * (`repo@sha256:…`) and a tag moved later cannot change what runs. Read-only, hence idempotent.
 */
import { ApplicationFailure } from '@temporalio/activity';
import type { Config } from '../config.ts';
import { headManifest, RegistryError } from '../registry/oci.ts';
import { parseImageReference, pinnedReference } from '../registry/reference.ts';
import { FailureType, type DeployActivities, type ResolveImageInput } from './types.ts';

export function createRegistryActivities(config: Pick<Config, 'registry'>): Pick<DeployActivities, 'resolveImage'> {
  const { username, password, insecureHosts } = config.registry;
  const credentials = username && password ? { username, password } : undefined;
  return {
    async resolveImage({ image }: ResolveImageInput) {
      const ref = parseImageReference(image);
      try {
        const { digest } = await headManifest(image, { credentials, insecureHosts });
        if (ref.digest && ref.digest !== digest) {
          throw ApplicationFailure.nonRetryable(
            `${image}: the registry holds ${digest} under that digest reference`,
            FailureType.Invalid,
          );
        }
        return { digest, pinned: pinnedReference(ref, digest) };
      } catch (err) {
        if (!(err instanceof RegistryError)) throw err;
        if (err.status === 404) {
          throw ApplicationFailure.nonRetryable(
            `${err.message}: was it pushed? (check the CI run's push step)`,
            FailureType.NotFound,
          );
        }
        if (err.status === 401 || err.status === 403) {
          throw ApplicationFailure.nonRetryable(
            `${err.message}: check REGISTRY_USERNAME/REGISTRY_PASSWORD on the worker`,
            FailureType.Unauthorized,
          );
        }
        throw ApplicationFailure.retryable(err.message, 'RegistryUnavailable');
      }
    },
  };
}
