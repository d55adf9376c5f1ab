/**
 * The local sandbox (`npm start`): the whole pipeline on this machine, then two real deploys.
 *
 * Starts (unless configured to use real ones) a Temporal dev server with Web UI, an OCI registry, the GitHub
 * emulator, a kwok Kubernetes cluster, and the worker with its webhook receiver; puts examples/hello into the
 * emulated GitHub; deploys examples/hello (built by the emulated CI) and examples/redis (a catalog image); prints
 * where to look and what to try; keeps running until Ctrl-C.
 *
 * `FLUI_CI=self-hosted npm start` builds examples/hello inside the installation instead: a builder process beside the
 * worker (`npm run builder`'s code), the local registry as the bundled one, `node:20` built offline from this machine
 * (dev/base-images.ts) and seeded into it as `flui base-images import` does, then a real buildah build of the app.
 *
 * `FLUI_CI=gitlab npm start` builds with the GitLab emulator; its Pipeline Hook deliveries are signed (a signing token
 * the stack generates for the emulator and the worker alike, dev/stack.ts), so the worker checks real signatures.
 */
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startDeploy, follow } from '../src/client/index.ts';
import { loadManifest } from '../src/manifest/parse.ts';
import type { Manifest } from '../src/manifest/schema.ts';
import { pushImage } from '@flui/github-emulator/registry-push';
import { startLocalStack, type LocalStack } from './stack.ts';
import { isSettled } from '../src/workflows/contract.ts';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { buildBaseImage } from './base-images.ts';
import { startBuilderProcess } from './builder.ts';
import { importBaseImage } from '../src/build/index.ts';
import { builderSettings } from '../src/ci/self-hosted/settings.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const DATA_DIR = process.env.FLUI_SANDBOX_DIR ?? join(homedir(), '.local', 'share', 'flui', 'sandbox');
/** The sandbox builder's scratch and layer caches (kept across runs, so rebuilds are cached). */
const BUILD_DIR = join('/var/tmp', 'flui-sandbox-build');
const bold = (s: string) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
const say = (line: string) => process.stdout.write(`${line}\n`);

async function readTree(dir: string): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  for (const entry of await readdir(dir, { recursive: true })) {
    const path = join(dir, entry);
    if ((await stat(path)).isFile()) files[relative(dir, path)] = await readFile(path, 'utf8');
  }
  return files;
}

async function deployAndFollow(stack: LocalStack, manifest: Manifest): Promise<boolean> {
  const name = `${manifest.kind} ${manifest.metadata.name}`;
  const started = await startDeploy(stack.client, manifest, { taskQueue: stack.config.temporal.taskQueue });
  say(`${bold(name)}: deploy ${started.deployId} started`);
  const t0 = Date.now();
  let last = '';
  for await (const status of follow(
    stack.client,
    manifest.metadata.namespace,
    manifest.metadata.name,
    started.deployId,
  )) {
    const line =
      `${status.phase}` +
      (status.ciRun ? ` · CI run ${status.ciRun.htmlUrl}` : '') +
      (status.digest ? ` · ${status.digest.slice(0, 19)}…` : '') +
      (status.error ? ` · ${status.error}` : '');
    if (line !== last) say(`  ${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s  ${line}`);
    last = line;
    if (isSettled(status.phase)) return status.phase === 'succeeded';
  }
  return false;
}

async function main(): Promise<void> {
  // The SDK's own INFO logs (bundling, worker state) would drown the story; warnings and errors still show.
  Runtime.install({ logger: new DefaultLogger((process.env.FLUI_LOG_LEVEL as 'INFO' | undefined) ?? 'WARN') });
  const selfHosted = process.env.FLUI_CI === 'self-hosted';
  say(bold(`Flui sandbox: the build pipeline on this machine${selfHosted ? ', builds self-hosted (buildah)' : ''}`));
  const stack = await startLocalStack({
    ci: selfHosted ? 'self-hosted' : 'github',
    // The builder runs as its own process, as on a build machine.
    builder: false,
    dataDir: DATA_DIR,
    ports: { temporal: 7233, ui: 8233, registry: 5001, github: 3030, gitlab: 3031, webhook: 8787 },
    // FLUI_CI=gitlab npm start: the GitLab emulator builds instead of GitHub's.
    ...(process.env.FLUI_CI === 'gitlab' ? { ci: 'gitlab' as const } : {}),
    persistTemporal: false,
    runner: { queuedMs: 1000, buildMs: 4000 },
    // The builder's user namespace maps no id of the host's: its work and cache must not sit under a home directory
    // other users cannot enter (/root is 0700). A configured FLUI_BUILD_WORK_DIR / FLUI_BUILD_CACHE_DIR still wins.
    ...(selfHosted
      ? {
          env: {
            FLUI_BUILD_WORK_DIR: process.env.FLUI_BUILD_WORK_DIR ?? join(BUILD_DIR, 'work'),
            FLUI_BUILD_CACHE_DIR: process.env.FLUI_BUILD_CACHE_DIR ?? join(BUILD_DIR, 'cache'),
          },
        }
      : {}),
    log: (line) => say(`  ${line}`),
    configured: process.env,
  });
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    say('\nStopping the sandbox…');
    await stack.stop();
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);

  if (selfHosted) {
    const builder = await startBuilderProcess(stack.env, {
      logFile: join(DATA_DIR, 'builder.log'),
      fromSources: true,
    });
    const stopStack = stack.stop;
    stack.stop = async () => {
      await builder.stop();
      await stopStack();
    };
    say(`  Builder: pid ${builder.pid}, log ${join(DATA_DIR, 'builder.log')}`);
    // Offline: the base image the app's Dockerfile names, built from this machine and imported into the registry.
    const layout = join(DATA_DIR, 'base-node');
    await buildBaseImage('node', layout, '20');
    const target = `${stack.env.FLUI_BASE_REGISTRY}/library/node:20`;
    const { digest } = await importBaseImage(layout, target, builderSettings(stack.config));
    say(
      `  Base image: ${target}@${digest.slice(0, 19)}… (built offline, imported as \`flui base-images import\` does)`,
    );
  }

  const hello = await loadManifest(join(ROOT, 'examples/hello/flui.yaml'));
  const redis = await loadManifest(join(ROOT, 'examples/redis/flui.yaml'));
  if (stack.github && hello.kind === 'Application') {
    const [owner, name] = hello.spec.source.repository.split('/') as [string, string];
    await stack.github.createRepo({
      owner,
      name,
      defaultBranch: hello.spec.source.branch,
      files: await readTree(join(ROOT, 'examples/hello/repo')),
    });
    say(`  GitHub emulator: repository ${hello.spec.source.repository} holds examples/hello/repo`);
  }
  if (stack.gitlab && hello.kind === 'Application') {
    await stack.gitlab.createProject({
      path: hello.spec.source.repository,
      defaultBranch: hello.spec.source.branch,
      files: await readTree(join(ROOT, 'examples/hello/repo')),
    });
    say(`  GitLab emulator: project ${hello.spec.source.repository} holds examples/hello/repo`);
  }
  if (stack.registry && redis.kind === 'CatalogApp') {
    // No internet here: the catalog image is a small stand-in pushed to the local registry.
    await pushImage(redis.spec.image, {
      files: { README: 'Stand-in for redis in the Flui sandbox (no internet access to pull the real image).\n' },
      credentials: { username: stack.env.REGISTRY_USERNAME!, password: stack.env.REGISTRY_PASSWORD! },
    });
    say(`  OCI registry: catalog image ${redis.spec.image} present`);
  }

  say('');
  const ok = [await deployAndFollow(stack, hello), await deployAndFollow(stack, redis)].every(Boolean);

  const envFile = join(DATA_DIR, 'env');
  const cliEnv = { TEMPORAL_ADDRESS: stack.env.TEMPORAL_ADDRESS!, KUBECONFIG: stack.env.KUBECONFIG! };
  await writeFile(
    envFile,
    Object.entries(cliEnv)
      .map(([k, v]) => `export ${k}=${v}\n`)
      .join(''),
  );
  say('');
  say(ok ? bold('Both deploys succeeded.') : bold('A deploy did not succeed: see above.'));
  if (stack.cluster) {
    say('\nPods on the kwok cluster:');
    say((await stack.cluster.kubectl('get', 'pods', '-o', 'wide', '-L', 'app.kubernetes.io/name')).trimEnd());
  }
  if (stack.temporal?.uiUrl) say(`Temporal Web UI:   ${stack.temporal.uiUrl}/namespaces/default/workflows`);
  say(`Pods:              KUBECONFIG=${cliEnv.KUBECONFIG} ${join(homedir(), '.cache/flui/bin/kubectl')} get pods`);
  say(`In another terminal: source ${envFile}, then try:`);
  for (const cmd of [
    'status hello',
    'builds hello',
    'images hello',
    'logs hello',
    'deploy examples/hello/flui.yaml --follow',
    'rollback hello',
    'cancel hello',
  ]) {
    say(`  npx flui ${cmd}`);
  }
  say('Ctrl-C stops everything.');
  await new Promise(() => undefined);
}

main().catch((err: unknown) => {
  process.stderr.write(`flui sandbox: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
