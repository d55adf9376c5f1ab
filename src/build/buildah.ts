/**
 * The files and command lines buildah gets for one build: a registries.conf that sends docker.io and short names to
 * the installation's base registry, a signature policy that (air-gapped) refuses every other registry, a docker
 * config with the credentials of the hosts this build talks to (and no other), and the storage flags of the app's
 * cache. Pure functions: tested without buildah.
 */
import type { RegistryAuths } from '../registry/auths.ts';
import { authFor } from '../registry/auths.ts';

export interface StorageFlags {
  root: string;
  runroot: string;
}

export function globalFlags(storage: StorageFlags): string[] {
  return ['--storage-driver', 'vfs', '--root', storage.root, '--runroot', storage.runroot];
}

const tomlString = (s: string) => JSON.stringify(s);

/**
 * registries.conf: short names search docker.io only; docker.io is the base registry when one is set; insecure
 * hosts are marked so (plain HTTP or unverified TLS for them alone).
 */
export function registriesConf(baseRegistry: string | undefined, insecureHosts: readonly string[]): string {
  const lines = ['unqualified-search-registries = ["docker.io"]', 'short-name-mode = "permissive"', ''];
  const insecure = new Set(insecureHosts.map((h) => h.toLowerCase()));
  if (baseRegistry) {
    lines.push(
      '[[registry]]',
      'prefix = "docker.io"',
      `location = ${tomlString(baseRegistry)}`,
      `insecure = ${insecure.has(baseRegistry.toLowerCase())}`,
      '',
    );
  }
  for (const host of insecure) {
    lines.push('[[registry]]', `location = ${tomlString(host)}`, 'insecure = true', '');
  }
  return lines.join('\n');
}

/**
 * The signature policy (containers-policy.json): with a base registry, images come from it and from the image's own
 * registry only (an air-gapped installation reaches nothing else); without one, from anywhere.
 */
export function signaturePolicy(allowedHosts: readonly string[] | undefined): string {
  const accept = [{ type: 'insecureAcceptAnything' }];
  if (!allowedHosts) return JSON.stringify({ default: accept });
  return JSON.stringify({
    default: [{ type: 'reject' }],
    transports: {
      docker: Object.fromEntries(allowedHosts.map((h) => [h, accept])),
      'containers-storage': { '': accept },
      'oci-archive': { '': accept },
      oci: { '': accept },
      'docker-archive': { '': accept },
      dir: { '': accept },
    },
  });
}

/** A docker config with the credentials of `hosts` only: each host's own, none for a host without. */
export function authFile(auths: RegistryAuths, hosts: readonly string[]): { json: string; secrets: string[] } {
  const out: Record<string, { auth: string }> = {};
  const secrets: string[] = [];
  for (const host of new Set(hosts.map((h) => h.toLowerCase()))) {
    const auth = authFor(auths, host);
    if (!auth) continue;
    const basic = Buffer.from(`${auth.username}:${auth.password}`).toString('base64');
    out[host] = { auth: basic };
    secrets.push(auth.password, basic);
  }
  return { json: JSON.stringify({ auths: out }), secrets };
}

/** A Dockerfile's image name fully qualified as docker would read it: `node:20` is `docker.io/library/node:20`. */
export function qualify(ref: string): string {
  const first = ref.split('/')[0]!;
  const qualified = ref.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost');
  if (qualified) return ref;
  return `docker.io/${ref.includes('/') ? '' : 'library/'}${ref}`;
}

/** The registry host of an image a Dockerfile names (short names and docker.io: the base registry when set). */
export function pullHost(ref: string, baseRegistry: string | undefined): string {
  const first = ref.split('/')[0]!;
  const qualified = ref.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost');
  const host = qualified ? first.toLowerCase() : 'docker.io';
  return host === 'docker.io' && baseRegistry ? baseRegistry.toLowerCase() : host;
}

/** The build arguments as argv: one `--build-arg` and one `NAME=value` element each (no shell anywhere). */
export function buildArgFlags(args: Record<string, string>): string[] {
  return Object.entries(args).flatMap(([k, v]) => ['--build-arg', `${k}=${v}`]);
}

/** A registry's refusal (not a local "permission denied" on a file). */
const REFUSED = /unauthorized|authentication required|\b401\b|\b403\b|requested access to the resource is denied/i;

/** How a failed buildah push reads: refused credentials, or the registry being unavailable. */
export function pushFailureKind(tail: string): 'unauthorized' | 'unavailable' | 'not-found' {
  if (REFUSED.test(tail)) return 'unauthorized';
  if (/name unknown|\b404\b/i.test(tail) && !/connection refused/i.test(tail)) return 'not-found';
  return 'unavailable';
}

/** How a failed pull of a base image reads. */
export function pullFailureKind(tail: string): 'unauthorized' | 'unavailable' | 'not-found' | 'invalid' {
  if (/not allowed by policy|Source image rejected|rejected by policy/i.test(tail)) return 'invalid';
  if (/manifest unknown|name unknown|\b404\b/i.test(tail)) return 'not-found';
  if (REFUSED.test(tail)) return 'unauthorized';
  return 'unavailable';
}
