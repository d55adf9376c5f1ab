/** The real OCI registry (Debian's docker-registry) for tests: see dev/registry.ts. */
import { startRegistry, type LocalRegistry, type RegistryOptions } from '../../dev/registry.ts';
import { useServer } from './suite.ts';

export const REGISTRY_USER = 'flui-ci';
export const REGISTRY_PASSWORD = 'registry-password-for-tests';

/** A registry for this suite; with `auth: true` it requires {@link REGISTRY_USER}/{@link REGISTRY_PASSWORD}. */
export function useRegistry(opts: Omit<RegistryOptions, 'auth'> & { auth?: boolean } = {}): () => LocalRegistry {
  return useServer(() =>
    startRegistry({
      ...opts,
      auth: opts.auth ? { username: REGISTRY_USER, password: REGISTRY_PASSWORD } : undefined,
    }),
  );
}

export { startRegistry, type LocalRegistry };
