/**
 * Lanes: which namespaces, repository owners and registries deploys may use on this Flui, from worker configuration.
 * A manifest is hostile input: without lanes it could deploy into `kube-system`, build from any repository the token
 * reaches and push to or pull from any registry. The check is pure (no Temporal, no I/O); src/activities/admission.ts
 * applies it to every activity before the activity does anything.
 *
 *   FLUI_ALLOWED_NAMESPACES         comma list of namespaces or patterns (`*` = any run of characters); unset: any
 *   FLUI_ALLOWED_REPOSITORY_OWNERS  comma list of repository owners or patterns (case-insensitive); unset: any
 *   FLUI_ALLOWED_REGISTRIES         comma list of registry hosts[:port] or patterns (case-insensitive); unset: any
 *   FLUI_WORKER_NAMESPACE           the worker's own namespace; read from the pod's service account when unset
 *
 * The cluster's own namespaces (kube-system, kube-public, kube-node-lease) and the worker's are refused even when a
 * pattern matches them: only an allowed entry that names one exactly opens it.
 */
import { readFileSync } from 'node:fs';
import { DNS_LABEL, IMAGE_REFERENCE, printable } from './manifest/names.ts';

export const CLUSTER_NAMESPACES = ['kube-system', 'kube-public', 'kube-node-lease'] as const;
/** Where Kubernetes mounts the namespace of a pod's service account. */
export const SERVICE_ACCOUNT_NAMESPACE_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

export interface Lanes {
  /** Namespaces or patterns deploys may use; undefined: any but the reserved ones. */
  namespaces?: string[];
  /** Refused unless `namespaces` names them exactly: the cluster's own and the worker's. */
  reservedNamespaces: string[];
  /** Repository owners or patterns builds may come from; undefined: any. */
  repositoryOwners?: string[];
  /** Registry hosts (`host[:port]`) or patterns images may come from and go to; undefined: any. */
  registries?: string[];
}

/** What a deploy touches, as far as lanes are concerned. */
export interface LaneRequest {
  namespace?: string;
  /** `owner/name` of the source repository. */
  repository?: string;
  /** Image references or repositories (`host[:port]/path...`): their registry hosts are checked. */
  images?: string[];
}

export interface LaneRefusal {
  lane: 'namespace' | 'repository owner' | 'registry';
  value: string;
  message: string;
}

interface ListSetting {
  variable: string;
  entry: RegExp;
  what: string;
}

const SETTINGS = {
  namespaces: {
    variable: 'FLUI_ALLOWED_NAMESPACES',
    entry: /^[a-z0-9*-]{1,63}$/,
    what: 'a namespace or a pattern of namespaces (lowercase letters, digits, "-", and "*" for any run of characters)',
  },
  repositoryOwners: {
    variable: 'FLUI_ALLOWED_REPOSITORY_OWNERS',
    entry: /^[A-Za-z0-9*-]{1,100}$/,
    what: 'a repository owner or a pattern of owners (letters, digits, "-", and "*" for any run of characters)',
  },
  registries: {
    variable: 'FLUI_ALLOWED_REGISTRIES',
    entry: /^[A-Za-z0-9.*-]{1,253}(:[0-9*]{1,6})?$/,
    what: 'a registry host[:port] or a pattern of them (e.g. "ghcr.io", "*.dkr.ecr.*.amazonaws.com", "127.0.0.1:*")',
  },
} satisfies Record<string, ListSetting>;

function parseList(env: NodeJS.ProcessEnv, setting: ListSetting, problems: string[]): string[] | undefined {
  const raw = env[setting.variable];
  if (raw === undefined || raw.trim() === '') return undefined;
  const entries = raw
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean);
  for (const e of entries) {
    if (!setting.entry.test(e)) problems.push(`${setting.variable}: "${printable(e)}" is not ${setting.what}`);
  }
  return entries;
}

function ownNamespace(env: NodeJS.ProcessEnv, file: string, problems: string[]): string | undefined {
  const configured = env.FLUI_WORKER_NAMESPACE?.trim();
  if (configured) {
    if (DNS_LABEL.test(configured)) return configured;
    problems.push(`FLUI_WORKER_NAMESPACE: "${printable(configured)}" is not a namespace name`);
    return undefined;
  }
  try {
    const mounted = readFileSync(file, 'utf8').trim();
    return DNS_LABEL.test(mounted) ? mounted : undefined;
  } catch {
    return undefined; // not running in a pod
  }
}

/**
 * The lanes configured in `env`, and a sentence for each bad value. `serviceAccountNamespaceFile` is where the pod's
 * namespace is read from when FLUI_WORKER_NAMESPACE is unset (tests point it elsewhere).
 */
export function parseLaneSettings(
  env: NodeJS.ProcessEnv,
  opts: { serviceAccountNamespaceFile?: string } = {},
): { value: Lanes; problems: string[] } {
  const problems: string[] = [];
  const own = ownNamespace(env, opts.serviceAccountNamespaceFile ?? SERVICE_ACCOUNT_NAMESPACE_FILE, problems);
  const value: Lanes = {
    namespaces: parseList(env, SETTINGS.namespaces, problems),
    reservedNamespaces: [...new Set<string>([...CLUSTER_NAMESPACES, ...(own ? [own] : [])])],
    repositoryOwners: parseList(env, SETTINGS.repositoryOwners, problems),
    registries: parseList(env, SETTINGS.registries, problems),
  };
  return { value, problems };
}

/** `*` matches any run of characters; everything else is itself. */
function matches(pattern: string, value: string): boolean {
  const source = pattern
    .split('*')
    .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
    .join('.*');
  return new RegExp(`^${source}$`, 'i').test(value);
}

function refusal(lane: LaneRefusal['lane'], value: string, allowed: string, variable: string): LaneRefusal {
  return {
    lane,
    value,
    message:
      `${lane} ${printable(value)} is not open to deploys on this Flui (allowed: ${allowed}); ` +
      `ask your platform team (worker setting ${variable})`,
  };
}

/** The first lane `request` is outside of, or undefined when it stays inside all of them. */
export function laneRefusal(lanes: Lanes, request: LaneRequest): LaneRefusal | undefined {
  const { namespace, repository, images = [] } = request;
  if (namespace !== undefined) {
    const list = lanes.namespaces;
    const reserved = lanes.reservedNamespaces.includes(namespace);
    const open = reserved ? (list?.includes(namespace) ?? false) : !list || list.some((p) => matches(p, namespace));
    if (!open) {
      const never = lanes.reservedNamespaces.filter((n) => !list?.includes(n));
      const allowed = list
        ? `${list.join(', ')}${never.length ? `; never ${never.join(', ')} unless named exactly` : ''}`
        : `any namespace but ${never.join(', ')}`;
      return refusal('namespace', namespace, allowed, SETTINGS.namespaces.variable);
    }
  }
  if (repository !== undefined && lanes.repositoryOwners) {
    const owner = repository.split('/')[0] ?? '';
    if (!lanes.repositoryOwners.some((p) => matches(p, owner))) {
      return refusal('repository owner', owner, lanes.repositoryOwners.join(', '), SETTINGS.repositoryOwners.variable);
    }
  }
  if (lanes.registries) {
    for (const image of images) {
      // A reference Flui cannot read names no registry it could allow: refused under its own text.
      const host = IMAGE_REFERENCE.exec(image)?.[1] ?? image;
      if (!lanes.registries.some((p) => matches(p, host))) {
        return refusal('registry', host, lanes.registries.join(', '), SETTINGS.registries.variable);
      }
    }
  }
  return undefined;
}
