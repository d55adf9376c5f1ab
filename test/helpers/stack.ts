/**
 * The whole pipeline for end-to-end tests (dev/stack.ts): real Temporal, registry, kwok cluster, the GitHub
 * emulator and the worker. Plus helpers to make apps the emulator knows.
 */
import { randomBytes } from 'node:crypto';
import type { Application, CatalogApp } from '../../src/manifest/schema.ts';
import { validateManifest } from '../../src/manifest/parse.ts';
import { startLocalStack, type LocalStack, type StackOptions } from '../../dev/stack.ts';
import { useServer } from './suite.ts';
import { workerWorkflowBundle } from './temporal.ts';
import { pollUntil } from './eventually.ts';
import { status } from '../../src/client/index.ts';
import type { DeployStatus } from '../../src/workflows/contract.ts';

export function useStack(opts: StackOptions = {}): () => LocalStack {
  return useServer(async () =>
    startLocalStack({
      runner: { queuedMs: 100, buildMs: 500 },
      workflowBundle: opts.worker === false ? undefined : await workerWorkflowBundle(),
      log: process.env.FLUI_TEST_VERBOSE ? (line) => process.stderr.write(`[stack] ${line}\n`) : undefined,
      ...opts,
    }),
  );
}

export const HELLO_FILES: Record<string, string> = {
  Dockerfile: 'FROM scratch\nCOPY server.js /\n',
  'server.js': 'console.log("hello")\n',
};

/** A fresh app (unique name) whose repository exists in the stack's GitHub emulator (or GitLab's, in a nested group). */
export async function createApplication(
  stack: LocalStack,
  spec: { files?: Record<string, string>; deploy?: Partial<Application['spec']['deploy']>; name?: string } = {},
): Promise<Application> {
  const name = spec.name ?? `app-${randomBytes(3).toString('hex')}`;
  // On GitLab, in a nested group: the path GitHub could not have.
  const repository = stack.gitlab ? `acme/apps/${name}` : `acme/${name}`;
  if (stack.gitlab) {
    await stack.gitlab.createProject({ path: repository, defaultBranch: 'main', files: spec.files ?? HELLO_FILES });
  } else {
    await stack.github!.createRepo({ owner: 'acme', name, defaultBranch: 'main', files: spec.files ?? HELLO_FILES });
  }
  // Self-hosted builds from a git server fetch the same files from there.
  await stack.git?.commit(`${repository}.git`, spec.files ?? HELLO_FILES, { branch: 'main' });
  const manifest = validateManifest({
    apiVersion: 'flui.dev/v1',
    kind: 'Application',
    metadata: { name },
    spec: {
      source: { repository, branch: 'main' },
      image: { repository: `${stack.registryHost}/acme/${name}` },
      port: 8080,
      replicas: 2,
      deploy: { progressDeadlineSeconds: 30, retryWindowMinutes: 10, ...spec.deploy },
    },
  });
  return manifest as Application;
}

export function catalogApp(image: string, name = `cat-${randomBytes(3).toString('hex')}`): CatalogApp {
  return validateManifest({
    apiVersion: 'flui.dev/v1',
    kind: 'CatalogApp',
    metadata: { name },
    spec: { image, port: 6379, replicas: 1, deploy: { progressDeadlineSeconds: 30 } },
  }) as CatalogApp;
}

/** Polls `probe` until it returns a value (not undefined) or `timeoutMs` passes. For waiting on servers' state. */
export async function eventually<T>(
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 60_000,
  what = 'condition',
): Promise<T> {
  return pollUntil(probe, { what, timeoutMs, intervalMs: 100 });
}

/** Waits until the app's current deploy is in `phase` (as `flui status` sees it) and returns that status. */
export async function phaseOf(
  client: Parameters<typeof status>[0],
  ns: string,
  app: string,
  phase: DeployStatus['phase'],
): Promise<DeployStatus> {
  return eventually(
    async () => {
      const s = await status(client, ns, app).catch(() => undefined);
      return s?.phase === phase ? s : undefined;
    },
    60_000,
    `phase ${phase}`,
  );
}
