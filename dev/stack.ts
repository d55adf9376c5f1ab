/**
 * The whole pipeline on one machine: Temporal dev server (with Web UI), an OCI registry with auth, the GitHub
 * emulator (whose runner pushes real images), a kwok Kubernetes cluster and the Flui worker with its webhook receiver.
 * The sandbox (`npm start`), the end-to-end tests and the benchmarks all assemble it here.
 *
 * Each part can be replaced by a real one through the usual configuration variables (TEMPORAL_ADDRESS, GITHUB_TOKEN
 * + GITHUB_API_URL, REGISTRY_USERNAME/PASSWORD, KUBECONFIG): the stack only starts what is not configured.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import type { WorkflowBundleOption } from '@temporalio/worker';
import { loadConfig, type Config } from '../src/config.ts';
import { startGitHubEmulator, type GitHubEmulator } from '@flui/github-emulator';
import { startGitLabEmulator, type GitLabEmulator } from '@flui/gitlab-emulator';
import { startWorker, type RunningWorker } from '../src/worker.ts';
import { startBuilder, type RunningBuilder } from '../src/builder.ts';
import { startGitServer, type GitServer } from './git-server.ts';
import { startKwokCluster, type KwokCluster } from './kwok.ts';
import { freePort, makeTempDir } from './process.ts';
import { startRegistry, type LocalRegistry } from './registry.ts';
import { startDevServer, type DevServer } from './temporal.ts';

export interface StackOptions {
  /** State, logs and kubeconfig; a temp dir when omitted. */
  dataDir?: string;
  /** Fixed ports (the sandbox uses well-known ones); free ports when omitted. */
  ports?: {
    temporal?: number;
    ui?: number | false;
    registry?: number;
    github?: number;
    gitlab?: number;
    webhook?: number;
  };
  /** Keep Temporal state in `dataDir` across restarts. */
  persistTemporal?: boolean;
  /**
   * Which CI builds Application deploys (FLUI_CI): `github` (default), the GitHub emulator's runner; `gitlab`, the
   * GitLab emulator instead of GitHub's; `self-hosted`, the build workflow and a builder running real buildah, the
   * GitHub emulator (or a git server) serving only the sources.
   */
  ci?: 'github' | 'gitlab' | 'self-hosted';
  /** Deliver CI webhooks to the worker (default true); polling alone otherwise. */
  webhooks?: boolean;
  /** Simulated CI durations. */
  runner?: { queuedMs?: number; buildMs?: number };
  /** The emulated GitHub's primary rate limit per token per hour (GitHub's: 5,000). */
  githubRateLimit?: number;
  /** The emulated GitLab's rate limit per token per minute (gitlab.com's authenticated API limit: 2,000). */
  gitlabRateLimit?: number;
  /** Start the worker in this process (default true). Tests of crashes run it as a child process instead. */
  worker?: boolean;
  workflowBundle?: WorkflowBundleOption;
  /** Worker settings on top of the stack's (e.g. GITHUB_WRITE_INTERVAL_MS). */
  env?: Record<string, string>;
  /** With `ci: 'self-hosted'`: run a builder in this process (default: when the worker runs here). */
  builder?: boolean;
  /**
   * With `ci: 'self-hosted'`: where builders fetch sources, the GitHub emulator's API (`github`, default) or a local
   * git server (`git`, dev/git-server.ts), which then holds every repository created through the stack too.
   */
  buildSource?: 'github' | 'git';
  /** Progress lines. */
  log?: (line: string) => void;
  /** The environment whose configured parts replace local ones (default: none, everything local). */
  configured?: NodeJS.ProcessEnv;
}

export interface LocalStack {
  dataDir: string;
  temporal?: DevServer;
  registry?: LocalRegistry;
  github?: GitHubEmulator;
  /** The GitLab emulator, when `ci: 'gitlab'`. */
  gitlab?: GitLabEmulator;
  cluster?: KwokCluster;
  /** Environment variables that configure a worker or the CLI for this stack (contains test credentials). */
  env: Record<string, string>;
  config: Config;
  client: Client;
  worker?: RunningWorker;
  /** Which CI builds Application deploys. */
  ci: 'github' | 'gitlab' | 'self-hosted';
  /** The in-process builder (`ci: 'self-hosted'`). */
  builder?: RunningBuilder;
  /** The git server builders fetch from (`buildSource: 'git'`). */
  git?: GitServer;
  /** Registry host for image repositories in manifests, e.g. `127.0.0.1:5001`. */
  registryHost: string;
  stop(): Promise<void>;
}

export async function startLocalStack(opts: StackOptions = {}): Promise<LocalStack> {
  const say = opts.log ?? (() => undefined);
  const configured = opts.configured ?? {};
  const dataDir = opts.dataDir ?? (await makeTempDir('stack'));
  await mkdir(dataDir, { recursive: true });
  const stops: (() => Promise<void>)[] = [];
  let self: LocalStack | undefined;
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
  };

  try {
    const env: Record<string, string> = { FLUI_DATA_DIR: dataDir };

    let temporal: DevServer | undefined;
    if (configured.TEMPORAL_ADDRESS) {
      env.TEMPORAL_ADDRESS = configured.TEMPORAL_ADDRESS;
      say(`Temporal: ${configured.TEMPORAL_ADDRESS} (configured)`);
    } else {
      say('Temporal dev server: starting');
      temporal = await startDevServer({
        port: opts.ports?.temporal,
        uiPort: opts.ports?.ui,
        dbFile: opts.persistTemporal ? join(dataDir, 'temporal.db') : undefined,
        logDir: dataDir,
      });
      stops.push(() => temporal!.stop());
      env.TEMPORAL_ADDRESS = temporal.address;
      say(`Temporal dev server: ${temporal.address}${temporal.uiUrl ? `, Web UI ${temporal.uiUrl}` : ''}`);
    }

    let registry: LocalRegistry | undefined;
    let registryHost: string;
    if (configured.REGISTRY_USERNAME && configured.REGISTRY_PASSWORD) {
      env.REGISTRY_USERNAME = configured.REGISTRY_USERNAME;
      env.REGISTRY_PASSWORD = configured.REGISTRY_PASSWORD;
      registryHost = configured.REGISTRY_HOST ?? configured.FLUI_REGISTRY_HOST ?? '';
      env.REGISTRY_HOST = registryHost;
      if (configured.FLUI_REGISTRY_PUSH) env.FLUI_REGISTRY_PUSH = configured.FLUI_REGISTRY_PUSH;
      else if (registryHost) env.FLUI_REGISTRY_PUSH = JSON.stringify({ [registryHost]: { method: 'static' } });
      say('Registry: configured credentials');
    } else {
      const auth = { username: 'flui-push', password: randomBytes(18).toString('base64url') };
      say('OCI registry: starting');
      registry = await startRegistry({ auth, dataDir: join(dataDir, 'registry'), port: opts.ports?.registry });
      stops.push(() => registry!.stop());
      env.REGISTRY_USERNAME = auth.username;
      env.REGISTRY_PASSWORD = auth.password;
      // The push credential belongs to this registry alone: the worker sends it nowhere else.
      env.REGISTRY_HOST = registry.host;
      registryHost = registry.host;
      // The local registry uses htpasswd, not tokens: its CI gets the password, an explicit opt-in (FLUI_REGISTRY_PUSH).
      env.FLUI_REGISTRY_PUSH = JSON.stringify({ [registry.host]: { method: 'static' } });
      say(`OCI registry: ${registry.url} (htpasswd auth)`);
    }

    const webhookSecret = randomBytes(20).toString('hex');
    const webhookPort = opts.webhooks === false ? undefined : (opts.ports?.webhook ?? (await freePort()));
    if (webhookPort !== undefined) {
      env.FLUI_WEBHOOK_PORT = String(webhookPort);
      env.GITHUB_WEBHOOK_SECRET = webhookSecret;
    }

    let github: GitHubEmulator | undefined;
    let gitlab: GitLabEmulator | undefined;
    if (opts.ci === 'gitlab') {
      env.FLUI_CI = 'gitlab';
      // The emulator signs its deliveries (GitLab's signing token) besides sending the secret token; the worker
      // requires both, so the end-to-end path runs signed.
      const signingToken = `whsec_${randomBytes(32).toString('base64')}`;
      if (webhookPort !== undefined) {
        env.GITLAB_WEBHOOK_SECRET = webhookSecret;
        env.GITLAB_WEBHOOK_SIGNING_TOKEN = signingToken;
      }
      if (configured.GITLAB_TOKEN) {
        delete env.GITLAB_WEBHOOK_SIGNING_TOKEN; // a configured GitLab's hooks are signed only if configured so
        for (const key of [
          'GITLAB_URL',
          'GITLAB_TOKEN',
          'GITLAB_WEBHOOK_SECRET',
          'GITLAB_WEBHOOK_SIGNING_TOKEN',
          'GITLAB_REGISTRY_HOST',
        ]) {
          if (configured[key]) env[key] = configured[key];
        }
        say('GitLab: configured');
      } else {
        say('GitLab emulator: starting');
        gitlab = await startGitLabEmulator({
          port: opts.ports?.gitlab,
          dataDir: join(dataDir, 'gitlab'),
          registry: { insecureHosts: ['127.0.0.1', 'localhost'] },
          webhook:
            webhookPort !== undefined
              ? { url: `http://127.0.0.1:${webhookPort}/`, token: webhookSecret, signingToken }
              : undefined,
          runner: { pendingMs: opts.runner?.queuedMs, buildMs: opts.runner?.buildMs },
          ...(opts.gitlabRateLimit ? { rateLimit: opts.gitlabRateLimit } : {}),
        });
        stops.push(() => gitlab!.stop());
        env.GITLAB_URL = gitlab.url;
        env.GITLAB_TOKEN = gitlab.createToken();
        say(`GitLab emulator: ${gitlab.url}${webhookPort !== undefined ? ' (signed webhooks)' : ''}`);
      }
    } else if (configured.GITHUB_TOKEN || configured.GITHUB_APP_ID) {
      for (const key of [
        'GITHUB_API_URL',
        'GITHUB_TOKEN',
        'GITHUB_APP_ID',
        'GITHUB_APP_PRIVATE_KEY',
        'GITHUB_APP_PRIVATE_KEY_FILE',
        'GITHUB_APP_INSTALLATION_ID',
        'GITHUB_WEBHOOK_SECRET',
      ]) {
        if (configured[key]) env[key] = configured[key];
      }
      say('GitHub: configured');
    } else {
      say('GitHub emulator: starting');
      github = await startGitHubEmulator({
        port: opts.ports?.github,
        dataDir: join(dataDir, 'github'),
        registry: { insecureHosts: ['127.0.0.1', 'localhost'] },
        webhook:
          webhookPort !== undefined ? { url: `http://127.0.0.1:${webhookPort}/`, secret: webhookSecret } : undefined,
        runner: opts.runner,
        rateLimit: opts.githubRateLimit,
      });
      stops.push(() => github!.stop());
      env.GITHUB_API_URL = github.url;
      env.GITHUB_TOKEN = github.createToken();
      say(`GitHub emulator: ${github.url}`);
    }

    let cluster: KwokCluster | undefined;
    if (configured.KUBECONFIG) {
      env.KUBECONFIG = configured.KUBECONFIG;
      say(`Kubernetes: ${configured.KUBECONFIG} (configured)`);
    } else {
      say('Kubernetes (kwok): starting');
      cluster = await startKwokCluster({ workDir: join(dataDir, 'kwok'), log: (line) => say(`  ${line}`) });
      stops.push(() => cluster!.stop());
      env.KUBECONFIG = cluster.kubeconfigPath;
      say(`Kubernetes (kwok): ${cluster.server}, kubeconfig ${cluster.kubeconfigPath}`);
    }

    const ci = opts.ci ?? 'github';
    let git: GitServer | undefined;
    if (ci === 'self-hosted' && opts.buildSource === 'git') {
      git = await startGitServer();
      stops.push(() => git!.stop());
      env.FLUI_BUILD_SOURCE = 'git';
      env.FLUI_GIT_URL_TEMPLATE = `${git.url}/{repository}.git`;
      say(`Git server: ${git.url} (sources of self-hosted builds)`);
    }
    if (ci === 'self-hosted') {
      // Builds run here with buildah and push to the bundled registry, whose credential the builder holds; FROM
      // lines resolve against that registry too (seed it with `flui base-images import`).
      env.FLUI_CI = 'self-hosted';
      // Buildah runs as root of a user namespace of its own, which must be able to reach these directories: the
      // data dir (often a private temp dir) gets search permission for others, nothing more.
      env.FLUI_BUILD_WORK_DIR = join(dataDir, 'build', 'work');
      env.FLUI_BUILD_CACHE_DIR = join(dataDir, 'build', 'cache');
      for (const dir of [dataDir, join(dataDir, 'build'), env.FLUI_BUILD_WORK_DIR, env.FLUI_BUILD_CACHE_DIR]) {
        await mkdir(dir, { recursive: true });
        await chmod(dir, 0o711);
      }
      env.FLUI_BASE_REGISTRY = registryHost;
      // Plain HTTP to the local registry, named with its port as builders name it in FROM lines and pushes.
      env.REGISTRY_INSECURE_HOSTS = `127.0.0.1,localhost,${registryHost}`;
      // The cluster pulls the built images from the bundled registry with a pull secret Flui writes.
      env.FLUI_PULL_SECRET_REGISTRIES = registryHost;
      say(
        `CI: self-hosted builds (buildah), task queue ${env.FLUI_BUILD_TASK_QUEUE ?? opts.env?.FLUI_BUILD_TASK_QUEUE ?? 'flui-build'}`,
      );
    }

    Object.assign(env, opts.env);
    // The in-process worker's health and metrics endpoints (src/observability/ops-server.ts) on a port of its own;
    // not in `env`, which worker processes share (test/helpers/worker-process.ts gives each one a port).
    const config = loadConfig({ FLUI_OPS_PORT: String(await freePort()), ...env });
    const connection = await Connection.connect({ address: env.TEMPORAL_ADDRESS! });
    stops.push(() => connection.close());
    const client = new Client({ connection, namespace: config.temporal.namespace });

    let worker: RunningWorker | undefined;
    if (opts.worker !== false) {
      worker = await startWorker(config, { workflowBundle: opts.workflowBundle, log: say });
      stops.push(() => worker!.shutdown());
    }
    let builder: RunningBuilder | undefined;
    if (ci === 'self-hosted' && (opts.builder ?? opts.worker !== false)) {
      builder = await startBuilder(config, { log: say });
      // The stack's builder when it stops: a test may have replaced the one started here.
      stops.push(async () => (self?.builder ?? builder)?.shutdown());
    }

    self = {
      dataDir,
      temporal,
      registry,
      github,
      ...(gitlab ? { gitlab } : {}),
      cluster,
      env,
      config,
      client,
      worker,
      ci,
      builder,
      git,
      registryHost,
      stop: stopAll,
    };
    return self;
  } catch (err) {
    await stopAll();
    throw err;
  }
}
