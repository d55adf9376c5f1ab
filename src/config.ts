/**
 * Configuration from environment variables, in two parts: what a client needs to reach Temporal (and the cluster, for
 * `flui images`), which the CLI reads alone, and what only the worker needs (GitHub, registry, webhook, limits). A
 * worker-only variable can therefore never break the CLI. A bad value stops the process with a sentence naming the
 * variable. Secrets (tokens, registry password, webhook secret, TLS keys) live only here and where they are used; they
 * never enter workflow payloads, and errors never echo them.
 *
 * The `TEMPORAL_*` connection settings are read as the Temporal CLI reads them (@temporalio/envconfig): the profile
 * `TEMPORAL_PROFILE` (default "default") of `TEMPORAL_CONFIG_FILE` (default ~/.config/temporalio/temporal.toml), then
 * TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS, TEMPORAL_TLS_CLIENT_CERT_PATH/_DATA,
 * TEMPORAL_TLS_CLIENT_KEY_PATH/_DATA, TEMPORAL_TLS_SERVER_CA_CERT_PATH/_DATA, TEMPORAL_TLS_SERVER_NAME and
 * TEMPORAL_GRPC_META_* over it.
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { loadClientConfigProfile, toClientOptions } from '@temporalio/envconfig';
import type { TLSConfig } from '@temporalio/client';
import { parseGitCredentials, type GitCredentials } from './build/git-credentials.ts';
import { parseRegistryAuths, type RegistryAuths } from './registry/auths.ts';
import { parseGitHubEnvironment } from './ci/github/settings.ts';
import {
  parseRegistryPushSettings,
  staticHostsWithoutCredential,
  type RegistryPushSettings,
} from './registry/push-access.ts';
import { parseLaneSettings, type Lanes } from './lanes.ts';
import type { CiBackendName } from './ci/backend.ts';
import { parseGitLabSettings, type GitLabSettings } from './ci/gitlab/settings.ts';

/** Where the worker and the CLI look for Temporal when nothing says otherwise (the Temporal CLI's default too). */
export const DEFAULT_TEMPORAL_ADDRESS = '127.0.0.1:7233';

export type GitHubAuth =
  | { kind: 'token'; token: string }
  /** Without `installationId`, each repository's installation is looked up (one app, many accounts). */
  | { kind: 'app'; appId: string; privateKey: string; installationId?: string };

/** What a client of Flui needs: the CLI reads this and nothing else. */
export interface ClientConfig {
  temporal: {
    /** Temporal frontend; 127.0.0.1:7233 when neither TEMPORAL_ADDRESS nor a profile sets one. */
    address: string;
    /** No address was configured: errors say the address is only the default. */
    addressIsDefault: boolean;
    namespace: string;
    uiPort: number;
    /** Web UI base URL when set explicitly (TEMPORAL_UI_URL). */
    uiUrl?: string;
    connectTimeoutMs: number;
    /** TLS as the SDK takes it: `true` for TLS with the system's roots, an object for a CA, server name or mTLS. */
    tls?: TLSConfig | boolean;
    apiKey?: string;
    /** gRPC headers (TEMPORAL_GRPC_META_*). */
    metadata?: Record<string, string>;
    taskQueue: string;
  };
  /** The cluster `flui images` and `flui rollback` read (KUBECONFIG; the client library's default when unset). */
  kubeconfig?: string;
}

/** The worker's configuration: the client part plus GitHub, the registry, the webhook receiver and limits. */
export interface Config extends ClientConfig {
  dataDir: string;
  /** Which CI builds Application deploys (FLUI_CI: github, gitlab or self-hosted; default github). */
  ci: { backend: CiBackendName };
  github: {
    apiUrl: string;
    auth?: GitHubAuth;
    webhookSecret?: string;
    updateMode: 'commit' | 'pull-request';
    writeIntervalMs: number;
    /** FLUI_GITHUB_ENVIRONMENT (src/ci/github/settings.ts). */
    environment?: string;
  };
  /** GitLab CI (FLUI_CI=gitlab): GITLAB_URL, GITLAB_TOKEN, GITLAB_WEBHOOK_SECRET, ... (src/ci/gitlab/settings.ts). */
  gitlab: GitLabSettings;
  registry: {
    /** Credentials by registry host, each sent to its own host only (src/registry/auths.ts). */
    auths: RegistryAuths;
    insecureHosts: string[];
    /** How each registry's CI pushes: FLUI_REGISTRY_PUSH (src/registry/push-access.ts); none configured if absent. */
    push?: RegistryPushSettings;
  };
  /** Namespaces, repository owners and registries deploys may use (src/lanes.ts). */
  lanes: Lanes;
  webhook?: { host: string; port: number };
  /** Self-hosted builds (FLUI_CI=self-hosted): the worker starts them, `flui-builder` runs them. */
  build: BuildConfig;
  worker: {
    maxConcurrentActivities: number;
    maxCachedWorkflows: number;
    logLevel: string;
    debug: boolean;
    workflowBundlePath?: string;
  };
  /** Operating the worker (src/observability): health and metrics endpoints, log format, tracing. */
  ops: OpsConfig;
}

export interface OpsConfig {
  /** The ops HTTP server (/livez, /readyz, /metrics): FLUI_OPS_HOST (127.0.0.1), FLUI_OPS_PORT (9464; 0: any). */
  host: string;
  port: number;
  /** FLUI_LOG_FORMAT: `text` (default) or `json`, one object per line for the worker's and the SDK's logs. */
  logFormat: 'text' | 'json';
  /** OpenTelemetry tracing (FLUI_OTEL=1, or OTEL_EXPORTER_OTLP_ENDPOINT set): spans to this OTLP/HTTP endpoint. */
  otel?: { endpoint: string; serviceName: string };
}

/**
 * Self-hosted builds. The worker reads the task queue, the source settings and the timeout cap (it starts builds);
 * `flui-builder` reads the rest (it runs them). Push credentials are the registry's (REGISTRY_AUTH_FILE, ...).
 */
export interface BuildConfig {
  /** FLUI_BUILD_TASK_QUEUE: where builders poll for builds (default flui-build). */
  taskQueue: string;
  /** FLUI_BUILD_WORK_DIR: scratch space, one directory per build (default <data dir>/build/work). */
  workDir: string;
  /** FLUI_BUILD_CACHE_DIR: per-app layer caches (default <data dir>/build/cache). */
  cacheDir: string;
  /** FLUI_BUILD_CACHE_MB: the caches' size budget; least recently used apps' caches go beyond it (default 10240). */
  cacheBudgetBytes: number;
  /** FLUI_BUILD_NETWORK: what RUN steps may reach, `none` (default) or `host`. */
  network: 'none' | 'host';
  /** FLUI_BUILD_TIMEOUT_MINUTES: the longest build the installation allows; a manifest may ask for less. */
  timeoutMinutes: number;
  /** FLUI_BASE_REGISTRY: where FROM lines resolve (docker.io and unqualified names), e.g. an offline mirror. */
  baseRegistry?: string;
  /** FLUI_BUILD_SOURCE: fetch sources from the GitHub API (`github`, default) or a git server (`git`). */
  source: 'github' | 'git';
  /** FLUI_GIT_URL_TEMPLATE: the git URL of a repository, `{repository}` standing for `owner/name`. */
  gitUrlTemplate?: string;
  /** FLUI_GIT_CREDENTIALS_FILE: the builder's credentials for git servers, by host (git's credential-store format). */
  gitAuth: GitCredentials;
  /** FLUI_BUILD_CONCURRENCY: builds one builder runs at once (default 1). */
  concurrency: number;
  /**
   * FLUI_BUILD_USER_NAMESPACE: run buildah as root of a fresh user namespace. Unset: yes when the builder is root of
   * the host's user namespace; a builder already in one of its own (a pod with `hostUsers: false`) is that root.
   */
  userNamespace?: boolean;
  /**
   * FLUI_PULL_SECRET_REGISTRIES: registry hosts the cluster pulls from with a pull secret Flui writes into the app's
   * namespace, from the worker's credential for that host (e.g. the bundled registry of self-hosted builds).
   */
  pullSecretRegistries: string[];
}

const CI_BACKENDS = { github: 'github-actions', gitlab: 'gitlab', 'self-hosted': 'self-hosted' } as const;

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/**
 * Reads variables and collects every problem as a sentence, so one run names all of them. Values are echoed only
 * for variables that never hold secrets.
 */
class Env {
  readonly problems: string[] = [];
  constructor(private readonly env: NodeJS.ProcessEnv) {}

  /** The value, or undefined when unset or empty (an empty variable means "not set", as in most shells' scripts). */
  string(name: string): string | undefined {
    const v = this.env[name];
    return v === undefined || v === '' ? undefined : v;
  }

  wholeNumber(name: string, min: number, max: number, fallback: number): number;
  wholeNumber(name: string, min: number, max: number, fallback?: number): number | undefined;
  wholeNumber(name: string, min: number, max: number, fallback?: number): number | undefined {
    const raw = this.string(name);
    if (raw === undefined) return fallback;
    const n = Number(raw.trim());
    if (/^[0-9]+$/.test(raw.trim()) && n >= min && n <= max) return n;
    this.problems.push(`${name} must be a whole number between ${min} and ${max}, not ${quote(raw)}`);
    return fallback;
  }

  oneOf<T extends string>(name: string, values: readonly T[], fallback: T): T {
    const raw = this.string(name);
    if (raw === undefined) return fallback;
    if ((values as readonly string[]).includes(raw)) return raw as T;
    this.problems.push(`${name} must be ${orList(values)}, not ${quote(raw)}`);
    return fallback;
  }

  flag(name: string): boolean {
    const raw = this.string(name)?.toLowerCase();
    if (raw === undefined) return false;
    if (['1', 'true', 'yes'].includes(raw)) return true;
    if (!['0', 'false', 'no'].includes(raw)) this.problems.push(`${name} must be 1, true or yes (or 0, false, no)`);
    return false;
  }

  url(name: string, fallback: string): string;
  url(name: string): string | undefined;
  url(name: string, fallback?: string): string | undefined {
    const raw = this.string(name);
    if (raw === undefined) return fallback;
    if (/^https?:\/\/[^\s/]/.test(raw) && URL.canParse(raw)) return raw.replace(/\/+$/, '');
    this.problems.push(`${name} must be an http(s) URL such as https://example.com, not ${quote(raw)}`);
    return fallback;
  }

  /** Complains about variables that are set but no longer read, naming what replaced them. */
  renamed(name: string, instead: string): void {
    if (this.string(name) !== undefined) this.problems.push(`${name} is no longer read: set ${instead} instead`);
  }

  /** Throws a {@link ConfigError} listing every problem seen so far. */
  check(): void {
    if (this.problems.length) {
      throw new ConfigError(`invalid configuration:\n${this.problems.map((p) => `  ${p}`).join('\n')}`);
    }
  }
}

const quote = (value: string) => JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value);
const orList = (values: readonly string[]) =>
  values.length === 1 ? values[0]! : `${values.slice(0, -1).join(', ')} or ${values.at(-1)}`;

/** Reads the client part: Temporal (as the Temporal CLI does), its Web UI, the task queue, the cluster. */
export function loadClientConfig(env: NodeJS.ProcessEnv = process.env): ClientConfig {
  const e = new Env(env);
  const client = readClientPart(e, env);
  e.check();
  return client;
}

function readClientPart(e: Env, env: NodeJS.ProcessEnv): ClientConfig {
  e.renamed('TEMPORAL_TLS_CERT', 'TEMPORAL_TLS_CLIENT_CERT_DATA (the PEM) or TEMPORAL_TLS_CLIENT_CERT_PATH');
  e.renamed('TEMPORAL_TLS_KEY', 'TEMPORAL_TLS_CLIENT_KEY_DATA (the PEM) or TEMPORAL_TLS_CLIENT_KEY_PATH');
  const profile = e.string('TEMPORAL_PROFILE') ?? 'default';
  let connect: ReturnType<typeof toClientOptions> | undefined;
  try {
    // Only set variables count: the SDK reads an empty one as a value (an empty address, a TLS file named "").
    const set = Object.fromEntries(Object.entries(env).filter((kv): kv is [string, string] => Boolean(kv[1])));
    connect = toClientOptions(loadClientConfigProfile({ overrideEnvVars: set }));
  } catch (err) {
    const where =
      e.string('TEMPORAL_CONFIG_FILE') ?? 'the Temporal CLI config file (~/.config/temporalio/temporal.toml)';
    e.problems.push(
      `Temporal connection settings (profile "${profile}" of ${where}, TEMPORAL_* variables): ${(err as Error).message}`,
    );
  }
  const options = connect?.connectionOptions;
  const address = options?.address;
  if (address !== undefined && !/^[^\s:/]+:[0-9]{1,5}$/.test(address)) {
    e.problems.push(`TEMPORAL_ADDRESS must be host:port, e.g. ${DEFAULT_TEMPORAL_ADDRESS}, not ${quote(address)}`);
  }
  return {
    temporal: {
      address: address ?? DEFAULT_TEMPORAL_ADDRESS,
      addressIsDefault: address === undefined,
      namespace: connect?.namespace || 'default',
      uiPort: e.wholeNumber('TEMPORAL_UI_PORT', 1, 65535, 8233),
      uiUrl: e.url('TEMPORAL_UI_URL'),
      connectTimeoutMs: e.wholeNumber('TEMPORAL_CONNECT_TIMEOUT_MS', 100, 120_000, 5000),
      tls: options?.tls ?? undefined,
      apiKey: options?.apiKey,
      // From TEMPORAL_GRPC_META_* and the profile: always strings.
      metadata:
        options?.metadata && Object.keys(options.metadata).length
          ? (options.metadata as Record<string, string>)
          : undefined,
      taskQueue: e.string('FLUI_TASK_QUEUE') ?? 'flui-deploy',
    },
    kubeconfig: e.string('KUBECONFIG'),
  };
}

/** Reads the worker's configuration (the client part included); throws {@link ConfigError} naming every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const e = new Env(env);
  const client = readClientPart(e, env);

  let auth: GitHubAuth | undefined;
  const appId = e.string('GITHUB_APP_ID');
  const token = e.string('GITHUB_TOKEN');
  if (appId !== undefined) {
    const keyFile = e.string('GITHUB_APP_PRIVATE_KEY_FILE');
    const privateKey = e.string('GITHUB_APP_PRIVATE_KEY') ?? (keyFile && readSecretFile(e, keyFile));
    // Without an installation id, each repository's installation is looked up (one app, many accounts).
    const installationId = e.string('GITHUB_APP_INSTALLATION_ID');
    if (privateKey) auth = { kind: 'app', appId, privateKey, ...(installationId ? { installationId } : {}) };
    else if (privateKey !== null) {
      e.problems.push('GITHUB_APP_ID needs GITHUB_APP_PRIVATE_KEY (or GITHUB_APP_PRIVATE_KEY_FILE)');
    }
  } else if (token !== undefined) {
    auth = { kind: 'token', token };
  }
  // Credentials by host (and the pair above, bound to REGISTRY_HOST); its problems name their variables.
  const registryAuths = parseRegistryAuths(env);
  const push = parseRegistryPushSettings(env);
  const environment = parseGitHubEnvironment(env);
  const lanes = parseLaneSettings(env);
  e.problems.push(
    ...registryAuths.problems,
    ...push.problems,
    ...staticHostsWithoutCredential(push.value, registryAuths.auths),
    ...environment.problems,
    ...lanes.problems,
  );
  const webhookPort = e.wholeNumber('FLUI_WEBHOOK_PORT', 0, 65535);
  const dataDir = e.string('FLUI_DATA_DIR') ?? join(homedir(), '.local', 'share', 'flui');
  const build = readBuildPart(e, dataDir);

  // GitLab CI (FLUI_CI=gitlab). The instance's own registry is pushed to with the job's token unless
  // FLUI_REGISTRY_PUSH says otherwise: nothing stored.
  const ciBackend = CI_BACKENDS[e.oneOf('FLUI_CI', ['github', 'gitlab', 'self-hosted'], 'github')];
  const gitlab = parseGitLabSettings(env);
  e.problems.push(...gitlab.problems);
  const gitlabRegistry = gitlab.value.registryHost;
  if (ciBackend === 'gitlab' && gitlabRegistry && !push.value.hosts[gitlabRegistry]) {
    push.value.hosts[gitlabRegistry] = { method: 'ci-job-token', registry: gitlabRegistry };
  }

  const config: Config = {
    ...client,
    dataDir,
    ci: { backend: ciBackend },
    github: {
      apiUrl: e.url('GITHUB_API_URL', 'https://api.github.com'),
      auth,
      webhookSecret: e.string('GITHUB_WEBHOOK_SECRET'),
      /** `commit` writes the pipeline file to the branch; `pull-request` proposes it. */
      updateMode: e.oneOf('FLUI_PIPELINE_UPDATE_MODE', ['commit', 'pull-request'], 'commit'),
      // GitHub asks for at least a second between the starts of two writes, to stay clear of its secondary rate
      // limits; a GitHub Enterprise Server without them may go lower (0: unpaced).
      writeIntervalMs: e.wholeNumber('GITHUB_WRITE_INTERVAL_MS', 0, 60_000, 1000),
      environment: environment.value,
    },
    gitlab: gitlab.value,
    registry: {
      auths: registryAuths.auths,
      // Registries spoken to over plain HTTP (local ones).
      insecureHosts: (e.string('REGISTRY_INSECURE_HOSTS') ?? '127.0.0.1,localhost')
        .split(',')
        .map((h) => h.trim())
        .filter(Boolean),
      push: push.value,
    },
    lanes: lanes.value,
    webhook:
      webhookPort !== undefined ? { host: e.string('FLUI_WEBHOOK_HOST') ?? '127.0.0.1', port: webhookPort } : undefined,
    build,
    worker: {
      maxConcurrentActivities: e.wholeNumber('FLUI_MAX_CONCURRENT_ACTIVITIES', 1, 10_000, 200),
      // A deploy waiting on CI needs no cache (its polls are activity retries), so a small cache costs only a replay
      // of a short history when a run finishes; one as large as the deploys in flight costs memory for nothing.
      maxCachedWorkflows: e.wholeNumber('FLUI_MAX_CACHED_WORKFLOWS', 0, 100_000, 250),
      logLevel: e.oneOf('FLUI_LOG_LEVEL', ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR'], 'INFO'),
      debug: e.flag('FLUI_DEBUG'),
      // Prebundled workflow code (`npm run bundle`): the worker starts without running webpack.
      workflowBundlePath: e.string('FLUI_WORKFLOW_BUNDLE'),
    },
    ops: readOpsPart(e),
  };
  e.check();
  return config;
}

/** Self-hosted builds' settings (see {@link BuildConfig}). */
function readBuildPart(e: Env, dataDir: string): BuildConfig {
  const source = e.oneOf('FLUI_BUILD_SOURCE', ['github', 'git'], 'github');
  const gitUrlTemplate = e.string('FLUI_GIT_URL_TEMPLATE');
  if (gitUrlTemplate !== undefined && !/^(https?|git):\/\/[^\s/]+\/\S*\{repository\}/.test(gitUrlTemplate)) {
    e.problems.push(
      `FLUI_GIT_URL_TEMPLATE must be an http(s) or git:// URL containing {repository}, e.g. http://git.internal/{repository}.git, not ${quote(gitUrlTemplate)}`,
    );
  } else if (source === 'git' && gitUrlTemplate === undefined) {
    e.problems.push('FLUI_BUILD_SOURCE=git needs FLUI_GIT_URL_TEMPLATE, e.g. http://git.internal/{repository}.git');
  }
  const gitAuth = parseGitCredentials({ FLUI_GIT_CREDENTIALS_FILE: e.string('FLUI_GIT_CREDENTIALS_FILE') });
  e.problems.push(...gitAuth.problems);
  const baseRegistry = e.string('FLUI_BASE_REGISTRY');
  if (baseRegistry !== undefined && !/^[A-Za-z0-9.-]+(:[0-9]{1,5})?(\/[a-z0-9._/-]+)?$/.test(baseRegistry)) {
    e.problems.push(
      `FLUI_BASE_REGISTRY must be a registry host[:port][/path], e.g. registry.internal:5000, not ${quote(baseRegistry)}`,
    );
  }
  const userNamespace =
    e.string('FLUI_BUILD_USER_NAMESPACE') === undefined ? undefined : e.flag('FLUI_BUILD_USER_NAMESPACE');
  return {
    taskQueue: e.string('FLUI_BUILD_TASK_QUEUE') ?? 'flui-build',
    workDir: e.string('FLUI_BUILD_WORK_DIR') ?? join(dataDir, 'build', 'work'),
    cacheDir: e.string('FLUI_BUILD_CACHE_DIR') ?? join(dataDir, 'build', 'cache'),
    cacheBudgetBytes: e.wholeNumber('FLUI_BUILD_CACHE_MB', 1, 10_000_000, 10_240) * 1024 * 1024,
    network: e.oneOf('FLUI_BUILD_NETWORK', ['none', 'host'], 'none'),
    timeoutMinutes: e.wholeNumber('FLUI_BUILD_TIMEOUT_MINUTES', 1, 1440, 60),
    baseRegistry,
    source,
    gitUrlTemplate,
    gitAuth: gitAuth.value,
    concurrency: e.wholeNumber('FLUI_BUILD_CONCURRENCY', 1, 64, 1),
    ...(userNamespace !== undefined ? { userNamespace } : {}),
    pullSecretRegistries: (e.string('FLUI_PULL_SECRET_REGISTRIES') ?? '')
      .split(',')
      .map((h) => h.trim().toLowerCase())
      .filter(Boolean),
  };
}

/** FLUI_OPS_*, FLUI_LOG_FORMAT, FLUI_OTEL and the standard OTEL_* variables the worker reads. */
function readOpsPart(e: Env): OpsConfig {
  const endpoint = e.url('OTEL_EXPORTER_OTLP_ENDPOINT');
  // FLUI_OTEL=1 turns tracing on (to a local collector unless the endpoint is set); FLUI_OTEL=0 keeps it off.
  const otelOn = e.string('FLUI_OTEL') !== undefined ? e.flag('FLUI_OTEL') : endpoint !== undefined;
  return {
    host: e.string('FLUI_OPS_HOST') ?? '127.0.0.1',
    port: e.wholeNumber('FLUI_OPS_PORT', 0, 65535, 9464),
    logFormat: e.oneOf('FLUI_LOG_FORMAT', ['text', 'json'], 'text'),
    otel: otelOn
      ? {
          // The OTLP/HTTP default (a local collector), as the OpenTelemetry SDKs have it.
          endpoint: endpoint ?? 'http://127.0.0.1:4318',
          serviceName: e.string('OTEL_SERVICE_NAME') ?? 'flui-worker',
        }
      : undefined,
  };
}

/** The file's contents, or null after recording why it cannot be read. */
function readSecretFile(e: Env, path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    e.problems.push(
      `GITHUB_APP_PRIVATE_KEY_FILE cannot be read (${path}): ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
    return null;
  }
}

/**
 * The configuration of a long-running process (`flui worker`, `flui builder`), or exit 2 with every problem named:
 * a process that cannot read its configuration must not start half-configured.
 */
export function loadConfigOrExit(program: string, env: NodeJS.ProcessEnv = process.env): Config {
  try {
    return loadConfig(env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${program}: ${err.message}\n`);
    process.exit(2);
  }
}
