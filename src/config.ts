/**
 * Worker and client configuration, from environment variables validated with zod. A bad value stops the process
 * with a message naming the variable. Secrets (tokens, registry password, webhook secret) live only here and in the
 * activities that read them; they never enter workflow payloads.
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { parseLaneSettings, type Lanes } from './lanes.ts';

const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === '' ? undefined : v));

const port = z.coerce.number().int().min(0).max(65535);

const booleanFlag = z
  .enum(['1', '0', 'true', 'false', 'yes', 'no', ''])
  .optional()
  .transform((v) => v === '1' || v === 'true' || v === 'yes');

const envSchema = z.object({
  TEMPORAL_ADDRESS: optionalString.pipe(
    z
      .string()
      .regex(/^[^\s:/]+:[0-9]{1,5}$/, 'must be host:port, e.g. 127.0.0.1:7233')
      .optional(),
  ),
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  TEMPORAL_TLS_CERT: optionalString,
  TEMPORAL_TLS_KEY: optionalString,
  TEMPORAL_API_KEY: optionalString,
  TEMPORAL_UI_PORT: port.default(8233),
  /** Web UI of a Temporal that is not local (self-hosted); the CLI links deploys to it. */
  TEMPORAL_UI_URL: optionalString.pipe(z.url().optional()),
  /** How long the CLI waits for Temporal before saying it cannot reach it. */
  TEMPORAL_CONNECT_TIMEOUT_MS: z.coerce.number().int().min(100).max(120_000).default(5000),
  FLUI_TASK_QUEUE: z.string().min(1).default('flui-deploy'),
  FLUI_DATA_DIR: z
    .string()
    .min(1)
    .default(join(homedir(), '.local', 'share', 'flui')),

  GITHUB_API_URL: z.url().default('https://api.github.com'),
  GITHUB_TOKEN: optionalString,
  GITHUB_APP_ID: optionalString,
  GITHUB_APP_PRIVATE_KEY: optionalString,
  GITHUB_APP_PRIVATE_KEY_FILE: optionalString,
  GITHUB_APP_INSTALLATION_ID: optionalString,
  GITHUB_WEBHOOK_SECRET: optionalString,
  /**
   * Least time between the starts of two writes (POST/PUT/PATCH/DELETE) to GitHub: GitHub asks for at least a second
   * to stay clear of its secondary rate limits. A GitHub Enterprise Server without them may go lower (0: unpaced).
   */
  GITHUB_WRITE_INTERVAL_MS: z.coerce.number().int().min(0).max(60_000).default(1000),
  /** `commit` writes the pipeline file to the branch; `pull-request` proposes it. */
  FLUI_PIPELINE_UPDATE_MODE: z.enum(['commit', 'pull-request']).default('commit'),

  REGISTRY_USERNAME: optionalString,
  REGISTRY_PASSWORD: optionalString,
  /** Comma-separated registry hosts spoken to over plain HTTP (local registries). */
  REGISTRY_INSECURE_HOSTS: z.string().default('127.0.0.1,localhost'),

  KUBECONFIG: optionalString,

  FLUI_WEBHOOK_PORT: port.optional(),
  FLUI_WEBHOOK_HOST: z.string().default('127.0.0.1'),
  FLUI_MAX_CONCURRENT_ACTIVITIES: z.coerce.number().int().min(1).max(10000).default(200),
  /**
   * Deploys kept in the worker's memory between workflow tasks. A deploy waiting on CI needs none (its polls are
   * activity retries), so a small cache costs only a replay of a short history when the run finishes; a cache as
   * large as the deploys in flight costs memory for nothing (BENCHMARKS.md).
   */
  FLUI_MAX_CACHED_WORKFLOWS: z.coerce.number().int().min(0).max(100000).default(250),
  FLUI_LOG_LEVEL: z.enum(['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR']).default('INFO'),
  FLUI_DEBUG: booleanFlag,
  /** Prebundled workflow code (`npm run bundle`), for a worker that starts in well under a second. */
  FLUI_WORKFLOW_BUNDLE: optionalString,
});

/** Where the worker and the CLI look for Temporal when TEMPORAL_ADDRESS is unset (the Temporal CLI's default too). */
export const DEFAULT_TEMPORAL_ADDRESS = '127.0.0.1:7233';

export type GitHubAuth =
  { kind: 'token'; token: string } | { kind: 'app'; appId: string; privateKey: string; installationId: string };

export interface Config {
  temporal: {
    /** Temporal frontend; 127.0.0.1:7233 when TEMPORAL_ADDRESS is unset, for the worker and the CLI alike. */
    address: string;
    /** TEMPORAL_ADDRESS was unset: errors say the address is only the default. */
    addressIsDefault: boolean;
    namespace: string;
    uiPort: number;
    /** Web UI base URL when set explicitly (TEMPORAL_UI_URL). */
    uiUrl?: string;
    connectTimeoutMs: number;
    tls?: { cert: string; key: string };
    apiKey?: string;
    taskQueue: string;
  };
  dataDir: string;
  github: {
    apiUrl: string;
    auth?: GitHubAuth;
    webhookSecret?: string;
    updateMode: 'commit' | 'pull-request';
    writeIntervalMs: number;
  };
  registry: {
    username?: string;
    password?: string;
    insecureHosts: string[];
  };
  kubeconfig?: string;
  /** Namespaces, repository owners and registries deploys may use (src/lanes.ts). */
  lanes: Lanes;
  webhook?: { host: string; port: number };
  worker: {
    maxConcurrentActivities: number;
    maxCachedWorkflows: number;
    logLevel: string;
    debug: boolean;
    workflowBundlePath?: string;
  };
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** Reads configuration from `env`; throws {@link ConfigError} naming every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${String(i.path[0])}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  const e = parsed.data;

  if ((e.TEMPORAL_TLS_CERT === undefined) !== (e.TEMPORAL_TLS_KEY === undefined)) {
    throw new ConfigError('invalid configuration:\n  TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY must be set together');
  }
  let auth: GitHubAuth | undefined;
  if (e.GITHUB_APP_ID !== undefined) {
    const privateKey =
      e.GITHUB_APP_PRIVATE_KEY ?? (e.GITHUB_APP_PRIVATE_KEY_FILE && readSecretFile(e.GITHUB_APP_PRIVATE_KEY_FILE));
    if (!privateKey || e.GITHUB_APP_INSTALLATION_ID === undefined) {
      throw new ConfigError(
        'invalid configuration:\n  GITHUB_APP_ID needs GITHUB_APP_PRIVATE_KEY (or GITHUB_APP_PRIVATE_KEY_FILE) and GITHUB_APP_INSTALLATION_ID',
      );
    }
    auth = { kind: 'app', appId: e.GITHUB_APP_ID, privateKey, installationId: e.GITHUB_APP_INSTALLATION_ID };
  } else if (e.GITHUB_TOKEN !== undefined) {
    auth = { kind: 'token', token: e.GITHUB_TOKEN };
  }
  const lanes = parseLaneSettings(env);
  if (lanes.problems.length) {
    throw new ConfigError(`invalid configuration:\n${lanes.problems.map((p) => `  ${p}`).join('\n')}`);
  }
  if ((e.REGISTRY_USERNAME === undefined) !== (e.REGISTRY_PASSWORD === undefined)) {
    throw new ConfigError('invalid configuration:\n  REGISTRY_USERNAME and REGISTRY_PASSWORD must be set together');
  }

  return {
    temporal: {
      address: e.TEMPORAL_ADDRESS ?? DEFAULT_TEMPORAL_ADDRESS,
      addressIsDefault: e.TEMPORAL_ADDRESS === undefined,
      namespace: e.TEMPORAL_NAMESPACE,
      uiPort: e.TEMPORAL_UI_PORT,
      uiUrl: e.TEMPORAL_UI_URL?.replace(/\/+$/, ''),
      connectTimeoutMs: e.TEMPORAL_CONNECT_TIMEOUT_MS,
      tls:
        e.TEMPORAL_TLS_CERT && e.TEMPORAL_TLS_KEY ? { cert: e.TEMPORAL_TLS_CERT, key: e.TEMPORAL_TLS_KEY } : undefined,
      apiKey: e.TEMPORAL_API_KEY,
      taskQueue: e.FLUI_TASK_QUEUE,
    },
    dataDir: e.FLUI_DATA_DIR,
    github: {
      apiUrl: e.GITHUB_API_URL.replace(/\/+$/, ''),
      auth,
      webhookSecret: e.GITHUB_WEBHOOK_SECRET,
      updateMode: e.FLUI_PIPELINE_UPDATE_MODE,
      writeIntervalMs: e.GITHUB_WRITE_INTERVAL_MS,
    },
    registry: {
      username: e.REGISTRY_USERNAME,
      password: e.REGISTRY_PASSWORD,
      insecureHosts: e.REGISTRY_INSECURE_HOSTS.split(',')
        .map((h) => h.trim())
        .filter(Boolean),
    },
    kubeconfig: e.KUBECONFIG,
    lanes: lanes.value,
    webhook: e.FLUI_WEBHOOK_PORT !== undefined ? { host: e.FLUI_WEBHOOK_HOST, port: e.FLUI_WEBHOOK_PORT } : undefined,
    worker: {
      maxConcurrentActivities: e.FLUI_MAX_CONCURRENT_ACTIVITIES,
      maxCachedWorkflows: e.FLUI_MAX_CACHED_WORKFLOWS,
      logLevel: e.FLUI_LOG_LEVEL,
      debug: e.FLUI_DEBUG,
      workflowBundlePath: e.FLUI_WORKFLOW_BUNDLE,
    },
  };
}

function readSecretFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(
      `invalid configuration:\n  GITHUB_APP_PRIVATE_KEY_FILE: cannot read ${path}: ${(err as Error).message}`,
    );
  }
}
