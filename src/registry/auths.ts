/**
 * Which registry credentials the worker holds, by registry host: what Flui itself uses to read registries (resolving
 * a tag to its digest). A credential goes only to the host it is configured for (see oci.ts); a registry with none is
 * spoken to anonymously.
 *
 * - `REGISTRY_AUTH_FILE`: a docker config JSON file (`{"auths": {"HOST[:PORT]": {"auth": base64("user:pass")}}}`, or
 *   `username`/`password` in place of `auth`). An entry may add `"realms": ["https://auth.example.com"]`: token realms
 *   on another origin that may receive the host's credentials (docker itself ignores the key).
 * - `REGISTRY_USERNAME` + `REGISTRY_PASSWORD`: one credential, for the hosts named in `REGISTRY_HOST` (comma-separated).
 */
import { readFileSync } from 'node:fs';
import type { RegistryCredentials } from './oci.ts';

export interface RegistryAuth extends RegistryCredentials {
  /** Token realm origins besides the registry's own that may receive these credentials. */
  realms: string[];
}

/** Credentials by registry host (`host[:port]`, lowercase). */
export type RegistryAuths = Record<string, RegistryAuth>;

const HOST = /^[a-z0-9.-]+(:[0-9]{1,5})?$/;

/** The credentials of `host`, if the worker holds any for it: never those of another host. */
export function authFor(auths: RegistryAuths, host: string): RegistryAuth | undefined {
  return Object.hasOwn(auths, host.toLowerCase()) ? auths[host.toLowerCase()] : undefined;
}

/** Reads the registry credentials; problems come back as sentences naming the variable (no secret in them). */
export function parseRegistryAuths(env: NodeJS.ProcessEnv): { auths: RegistryAuths; problems: string[] } {
  const auths: RegistryAuths = {};
  const problems: string[] = [];
  const file = env.REGISTRY_AUTH_FILE || undefined;
  if (file) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(file, 'utf8'));
    } catch (err) {
      problems.push(`REGISTRY_AUTH_FILE: cannot read ${file} as a docker config JSON file (${(err as Error).message})`);
    }
    const entries = (parsed as { auths?: unknown } | undefined)?.auths;
    if (parsed !== undefined && (typeof entries !== 'object' || entries === null)) {
      problems.push(`REGISTRY_AUTH_FILE: ${file} has no "auths" object`);
    }
    for (const [key, entry] of Object.entries((entries ?? {}) as Record<string, unknown>)) {
      const host = key
        .replace(/^https?:\/\//, '')
        .replace(/\/.*$/, '')
        .toLowerCase();
      const auth = credentialsOf(entry);
      if (!HOST.test(host)) problems.push(`REGISTRY_AUTH_FILE: "${key}" is not a registry host[:port]`);
      else if (!auth) problems.push(`REGISTRY_AUTH_FILE: the entry for ${host} has no "auth" or username and password`);
      else {
        const realms = realmsOf(entry, host, problems);
        auths[host] = { ...auth, realms };
      }
    }
  }
  const { REGISTRY_USERNAME: username, REGISTRY_PASSWORD: password, REGISTRY_HOST: hosts } = env;
  if (Boolean(username) !== Boolean(password)) {
    problems.push('REGISTRY_USERNAME and REGISTRY_PASSWORD must be set together');
  } else if (username && password) {
    const named = (hosts ?? '')
      .split(',')
      .map((h) => h.trim().toLowerCase())
      .filter(Boolean);
    if (named.length === 0) {
      problems.push(
        'REGISTRY_HOST must name the registry host[:port] that REGISTRY_USERNAME and REGISTRY_PASSWORD belong to ' +
          '(a credential is sent to its own host only)',
      );
    }
    for (const host of named) {
      if (!HOST.test(host)) problems.push(`REGISTRY_HOST: "${host}" is not a registry host[:port]`);
      else auths[host] ??= { username, password, realms: [] };
    }
  }
  return { auths, problems };
}

function credentialsOf(entry: unknown): RegistryCredentials | undefined {
  if (typeof entry !== 'object' || entry === null) return undefined;
  const e = entry as { auth?: unknown; username?: unknown; password?: unknown };
  if (typeof e.auth === 'string' && e.auth) {
    const plain = Buffer.from(e.auth, 'base64').toString('utf8');
    const colon = plain.indexOf(':');
    if (colon > 0) return { username: plain.slice(0, colon), password: plain.slice(colon + 1) };
    return undefined;
  }
  if (typeof e.username === 'string' && e.username && typeof e.password === 'string' && e.password) {
    return { username: e.username, password: e.password };
  }
  return undefined;
}

function realmsOf(entry: unknown, host: string, problems: string[]): string[] {
  const realms = (entry as { realms?: unknown }).realms;
  if (realms === undefined) return [];
  if (!Array.isArray(realms)) {
    problems.push(`REGISTRY_AUTH_FILE: "realms" of ${host} must be a list of https:// origins`);
    return [];
  }
  return realms.flatMap((r) => {
    try {
      const url = new URL(String(r));
      if (url.protocol === 'https:' || url.hostname === '127.0.0.1' || url.hostname === 'localhost')
        return [url.origin];
    } catch {
      // reported below
    }
    problems.push(`REGISTRY_AUTH_FILE: realm "${String(r)}" of ${host} must be an https:// origin`);
    return [];
  });
}
