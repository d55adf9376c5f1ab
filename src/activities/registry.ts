/**
 * The registry activity: resolve an image reference to the digest the registry holds, so every deploy is pinned
 * (`repo@sha256:…`) and a tag moved later cannot change what runs. Read-only, hence idempotent.
 */
import type { Config } from '../config.ts';
import { ServiceError } from '../errors.ts';
import { authFor } from '../registry/auths.ts';
import { headManifest } from '../registry/oci.ts';
import { parseImageReference, pinnedReference } from '../registry/reference.ts';
import type { DeployActivities, ResolveImageInput } from './types.ts';

/** What to check, by what the registry said: the registry client knows neither the worker's settings nor the CI. */
const HINTS: Partial<Record<ServiceError['kind'], string>> = {
  'not-found': "was it pushed? (check the CI run's push step)",
  unauthorized:
    "check the worker's credentials for this registry host (REGISTRY_AUTH_FILE, or REGISTRY_HOST with REGISTRY_USERNAME/REGISTRY_PASSWORD)",
};

export function createRegistryActivities(config: Pick<Config, 'registry'>): Pick<DeployActivities, 'resolveImage'> {
  const { auths, insecureHosts } = config.registry;
  return {
    async resolveImage({ image }: ResolveImageInput) {
      const ref = parseImageReference(image);
      // Only this host's own credentials, if the worker holds any: a manifest names whatever registry it likes.
      const auth = authFor(auths, ref.host);
      const credentials = auth && { username: auth.username, password: auth.password };
      const { digest } = await headManifest(image, { credentials, trustedRealms: auth?.realms, insecureHosts }).catch(
        (err: unknown) => {
          throw err instanceof ServiceError ? err.withHint(HINTS[err.kind]) : err;
        },
      );
      if (ref.digest && ref.digest !== digest) {
        throw new ServiceError({
          service: 'Registry',
          kind: 'invalid',
          message: `${image}: the registry holds ${digest} under that digest reference`,
        });
      }
      return { digest, pinned: pinnedReference(ref, digest) };
    },
  };
}
