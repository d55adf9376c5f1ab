/**
 * Cancel at each phase, through Temporal (`flui cancel`, Web UI) and through the cancel signal: the deploy ends
 * cancelled, nothing is rolled out after the cancel, and a CI run that was dispatched is cancelled on the CI. Each
 * deploy is held in its phase by the real server it waits on: a GitHub request on hold (preparing), a run no runner
 * picks up (building), a registry that is down (resolving), pods that never become ready (rolling out). The same
 * cases run with GitHub Actions and with GitLab CI.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { WorkflowFailedError } from '@temporalio/client';
import { startDeploy, status } from '../../src/client/index.ts';
import { readHistory } from '../../src/kube/history.ts';
import { ANNOTATION, kubeClients, rolloutState } from '../../src/kube/rollout.ts';
import { startRegistry, type LocalRegistry } from '../../dev/registry.ts';
import { startBuilder } from '../../src/builder.ts';
import type { Application } from '../../src/manifest/schema.ts';
import { cancelSignal, statusQuery, type DeployOutcome, type DeployStatus } from '../../src/workflows/contract.ts';
import type { LocalStack } from '../../dev/stack.ts';
import { assertContract } from '../helpers/github-emulator.ts';
import { assertGitLabContract, pipelineConclusion } from '../helpers/gitlab-emulator.ts';
import { createApplication, eventually, useStack } from '../helpers/stack.ts';

type How = 'temporal' | 'signal';

/** The CI under test, through its emulator: how to hold a deploy in a CI phase and what the CI recorded. */
interface CiUnderTest {
  /** Holds the requests that read the app's CI files (preparing) until `held` settles; calls `holding` on the first. */
  holdPreparing(repo: string, held: Promise<void>, holding: () => void): void;
  /** Runs of the app's repository, oldest first, with the CI's conclusion once finished (null/undefined before). */
  conclusions(repo: string): (string | null | undefined)[];
  /** CI runs dispatched (pipelines created) for the repository. */
  dispatched(repo: string): number;
  /** The conclusion of a run cancelled through the API, in the CI's own spelling. */
  cancelled: string;
  /** Keeps new runs queued/pending: no runner picks them up. */
  keepQueued(on: boolean): void;
  /** Calls `hook` once the CI has accepted the dispatch of a run (its answer held until `hook` returns). */
  afterDispatch(repo: string, hook: () => Promise<void>): void;
  /** Takes the hooks away. */
  clearHooks(): void;
  /** The emulator's contract check, when the suite ends. */
  assertContract(): void;
}

function githubUnderTest(s: LocalStack): CiUnderTest {
  const gh = s.github!;
  return {
    holdPreparing(repo, held, holding) {
      gh.hooks.before = async (info) => {
        if (info.repo === repo && info.operation.includes('/contents/')) {
          holding();
          await held;
        }
      };
    },
    conclusions: (repo) => gh.runs(repo).map((r) => r.conclusion),
    dispatched: (repo) => gh.records.dispatches[repo] ?? 0,
    cancelled: 'cancelled',
    keepQueued: (on) => gh.faults.keepQueued(on),
    afterDispatch(repo, hook) {
      gh.hooks.after = async (info) => {
        if (info.repo === repo && info.operation.endsWith('/dispatches')) await hook();
      };
    },
    clearHooks() {
      gh.hooks.before = undefined;
      gh.hooks.after = undefined;
    },
    assertContract: () => assertContract(gh),
  };
}

function gitlabUnderTest(s: LocalStack): CiUnderTest {
  const gl = s.gitlab!;
  return {
    holdPreparing(repo, held, holding) {
      gl.hooks.before = async (info) => {
        if (info.project === repo && info.operation.includes('/repository/files/')) {
          holding();
          await held;
        }
      };
    },
    conclusions: (repo) => gl.pipelines(repo).map((p) => pipelineConclusion(p)),
    dispatched: (repo) => gl.records.pipelinesCreated[repo] ?? 0,
    cancelled: 'canceled',
    keepQueued: (on) => gl.faults.keepPending(on),
    afterDispatch(repo, hook) {
      gl.hooks.after = async (info) => {
        if (info.project === repo && info.method === 'POST' && info.operation === '/projects/:id/pipeline')
          await hook();
      };
    },
    clearHooks() {
      gl.hooks.before = undefined;
      gl.hooks.after = undefined;
    },
    assertContract: () => assertGitLabContract(gl),
  };
}

/**
 * The cases of a CI backend (the stack's `ci`): cancelled while preparing, building, resolving and rolling out, each
 * through Temporal and through the cancel signal.
 */
function cancelAtEachPhase(stack: () => LocalStack, ciOf: (s: LocalStack) => CiUnderTest) {
  after(() => ciOf(stack()).assertContract());
  /** The registry restarted by the resolving case (the stack stops the one it started). */
  let restarted: LocalRegistry | undefined;
  after(() => restarted?.stop());

  /**
   * Starts a deploy, waits until it is in `phase` (and `until`, when given), cancels it, and resolves once it has
   * ended as cancelled.
   */
  async function cancelIn(app: Application, phase: DeployStatus['phase'], how: How, until?: Promise<void>) {
    const s = stack();
    const { workflowId } = await startDeploy(s.client, app, { taskQueue: s.config.temporal.taskQueue });
    const handle = s.client.workflow.getHandle(workflowId);
    await eventually(
      async () =>
        (await status(s.client, 'default', app.metadata.name).catch(() => undefined))?.phase === phase || undefined,
      60_000,
      `phase ${phase}`,
    );
    await until;
    if (how === 'temporal') await handle.cancel();
    else await handle.signal(cancelSignal, { reason: `test: cancel while ${phase}` });
    await assert.rejects(handle.result(), (err: unknown) => {
      assert.ok(err instanceof WorkflowFailedError);
      if (how === 'temporal') assert.equal(err.cause?.name, 'CancelledFailure');
      else assert.match(String(err.cause?.message), /cancelled: test: cancel while/);
      return true;
    });
    return handle;
  }

  async function assertNotRolledOut(app: Application) {
    const k = kubeClients(stack().env.KUBECONFIG);
    await assert.rejects(
      k.apps.readNamespacedDeployment({ name: app.metadata.name, namespace: 'default' }),
      (e: { code?: number }) => e.code === 404,
    );
  }

  it('while preparing: no CI run is dispatched and nothing is rolled out', async () => {
    const s = stack();
    const ci = ciOf(s);
    for (const how of ['temporal', 'signal'] as const) {
      const app = await createApplication(s);
      let release!: () => void;
      let holding!: () => void;
      // Cancelled once the CI holds a read of the app's files: the deploy is inside preparing, not before it.
      const held = new Promise<void>((resolve) => (holding = resolve));
      ci.holdPreparing(app.spec.source.repository, new Promise<void>((resolve) => (release = resolve)), holding);
      try {
        await cancelIn(app, 'preparing', how, held);
      } finally {
        release();
        ci.clearHooks();
      }
      assert.equal(ci.dispatched(app.spec.source.repository), 0, how);
      await assertNotRolledOut(app);
    }
  });

  it('while building: the CI run is cancelled and nothing is rolled out', async () => {
    const s = stack();
    const ci = ciOf(s);
    ci.keepQueued(true);
    try {
      for (const how of ['temporal', 'signal'] as const) {
        const app = await createApplication(s);
        await cancelIn(app, 'building', how);
        assert.deepEqual(ci.conclusions(app.spec.source.repository), [ci.cancelled], how);
        await assertNotRolledOut(app);
      }
    } finally {
      ci.keepQueued(false);
    }
  });

  it('while resolving the image (registry down): nothing is rolled out, the finished CI run is left alone', async () => {
    const s = stack();
    const ci = ciOf(s);
    for (const how of ['temporal', 'signal'] as const) {
      const app = await createApplication(s);
      // The build pushes every tag and succeeds, then the registry goes away before the worker asks it for the
      // digest. The dispatch's answer is held until then, so the worker cannot have seen the run finish.
      let stopped = false;
      ci.afterDispatch(app.spec.source.repository, async () => {
        const done = await eventually(
          // null while the run is going: keep polling until it has one.
          () => ci.conclusions(app.spec.source.repository)[0] ?? undefined,
          30_000,
          'the build to finish',
        );
        if (done === 'success') {
          await s.registry!.stop();
          stopped = true;
        }
      });
      try {
        await cancelIn(app, 'resolving', how);
      } finally {
        ci.clearHooks();
        // Back up on the same port and storage, for the next case and the next tests, whatever happened here.
        if (stopped) {
          const { host, dataDir } = s.registry!;
          restarted = await startRegistry({
            port: Number(host.split(':')[1]),
            dataDir,
            auth: { username: s.env.REGISTRY_USERNAME!, password: s.env.REGISTRY_PASSWORD! },
          });
          s.registry = restarted;
        }
      }
      assert.deepEqual(ci.conclusions(app.spec.source.repository), ['success'], how);
      await assertNotRolledOut(app);
    }
  });

  it('while rolling out a first deploy: the rollout is undone, the app removed, nothing recorded as good', async () => {
    const s = stack();
    const k = kubeClients(s.env.KUBECONFIG);
    for (const how of ['temporal', 'signal'] as const) {
      // Pods of images under a "fail-" path never become ready (dev/kwok-stages.yaml): the rollout waits.
      const app = await createApplication(s, {
        name: `fail-${how}-${Date.now().toString(36)}`,
        deploy: { progressDeadlineSeconds: 600 },
      });
      const handle = await cancelIn(app, 'rolling-out', how);
      await assertNotRolledOut(app);
      await assert.rejects(
        k.core.readNamespacedService({ name: app.metadata.name, namespace: 'default' }),
        (e: { code?: number }) => e.code === 404,
      );
      const entries = await readHistory(k, 'default', app.metadata.name);
      assert.deepEqual(
        entries.filter((e) => e.outcome === 'succeeded'),
        [],
        how,
      );
      assert.equal((await handle.query(statusQuery)).rolloutUndone, 'removed', how);
    }
  });

  it('while rolling out a new image: the last good image is back, as before the deploy', async () => {
    const s = stack();
    const k = kubeClients(s.env.KUBECONFIG);
    for (const how of ['temporal', 'signal'] as const) {
      const good = await createApplication(s, { name: `undo-${how}-${Date.now().toString(36)}` });
      const first = await startDeploy(s.client, good, { taskQueue: s.config.temporal.taskQueue });
      const done = (await s.client.workflow.getHandle(first.workflowId).result()) as DeployOutcome;
      const before = await k.apps.readNamespacedDeployment({ name: good.metadata.name, namespace: 'default' });
      // The same app, now built into a repository whose pods never become ready: its rollout waits until cancelled.
      const broken: Application = {
        ...good,
        spec: {
          ...good.spec,
          image: { ...good.spec.image, repository: `${s.registryHost}/acme/fail-${good.metadata.name}` },
          deploy: { ...good.spec.deploy, progressDeadlineSeconds: 600 },
        },
      };
      const handle = await cancelIn(broken, 'rolling-out', how);
      const after = await k.apps.readNamespacedDeployment({ name: good.metadata.name, namespace: 'default' });
      assert.equal(after.spec!.template.spec!.containers[0]!.image, done.image, how);
      assert.deepEqual(after.spec!.template.spec, before.spec!.template.spec, `${how}: the whole pod spec is back`);
      assert.equal(after.metadata!.annotations![ANNOTATION.deployId], done.deployId, how);
      assert.ok(rolloutState(after).done, `${how}: the restored image is healthy`);
      const st = await handle.query(statusQuery);
      assert.equal(st.rolloutUndone, 'restored', how);
      assert.equal(st.rolledBackTo, done.digest, how);
      const entries = await readHistory(k, 'default', good.metadata.name);
      assert.deepEqual(
        entries.filter((e) => e.outcome === 'succeeded').map((e) => e.deployId),
        [done.deployId],
        `${how}: only the first deploy is recorded as good`,
      );
    }
  });
}

describe('cancel at each phase', () => {
  cancelAtEachPhase(useStack(), githubUnderTest);
});

/**
 * The same cases with GitLab CI (FLUI_CI=gitlab): preparing holds a read of the project's CI files, building keeps the
 * pipeline pending (it ends `canceled` on GitLab), resolving takes the registry down once the pipeline succeeded.
 */
describe('cancel at each phase: GitLab CI', () => {
  cancelAtEachPhase(useStack({ ci: 'gitlab' }), gitlabUnderTest);
});

/**
 * Cancel at each phase that self-hosted builds (FLUI_CI=self-hosted) reach differently: while the build waits for a
 * builder (none running), and while rolling out an image a builder built. Preparing writes nothing with this backend
 * (no CI file, no secret), so there is nothing to hold there; resolving is the same code as with GitHub; a cancel in
 * the middle of a buildah build (the process tree stopped) is test/self-hosted/builders.test.ts.
 */
describe('cancel at each phase: self-hosted builds', () => {
  // Sources from a git server, as on premises (the GitHub source is test/self-hosted/deploy.test.ts).
  const stack = useStack({ ci: 'self-hosted', buildSource: 'git' });

  async function cancelIn(app: Application, phase: DeployStatus['phase'], how: How) {
    const s = stack();
    const started = await startDeploy(s.client, app, { taskQueue: s.config.temporal.taskQueue });
    const handle = s.client.workflow.getHandle(started.workflowId);
    await eventually(
      async () =>
        (await status(s.client, 'default', app.metadata.name).catch(() => undefined))?.phase === phase || undefined,
      120_000,
      `phase ${phase}`,
    );
    if (how === 'temporal') await handle.cancel();
    else await handle.signal(cancelSignal, { reason: `test: cancel while ${phase}` });
    await assert.rejects(handle.result(), WorkflowFailedError);
    return { handle, deployId: started.deployId };
  }

  it('while the build waits for a builder: the build is cancelled, nothing is built or rolled out', async () => {
    const s = stack();
    // No builder for this case: the build stays queued.
    await s.builder!.shutdown();
    try {
      for (const how of ['temporal', 'signal'] as const) {
        const app = await createApplication(s);
        const { deployId } = await cancelIn(app, 'building', how);
        const build = s.client.workflow.getHandle(`build-${deployId}`);
        await eventually(async () => (await build.describe()).status.name === 'CANCELLED' || undefined, 30_000);
        const k = kubeClients(s.env.KUBECONFIG);
        await assert.rejects(
          k.apps.readNamespacedDeployment({ name: app.metadata.name, namespace: 'default' }),
          (e: { code?: number }) => e.code === 404,
          how,
        );
      }
    } finally {
      s.builder = await startBuilder(s.config, { log: () => undefined });
    }
  });

  it('while rolling out a first deploy built by a builder: the rollout is undone, the app removed', async () => {
    const s = stack();
    const k = kubeClients(s.env.KUBECONFIG);
    for (const how of ['temporal', 'signal'] as const) {
      const app = await createApplication(s, {
        name: `fail-sh-${how}-${Date.now().toString(36)}`,
        deploy: { progressDeadlineSeconds: 600 },
      });
      const { handle } = await cancelIn(app, 'rolling-out', how);
      await assert.rejects(
        k.apps.readNamespacedDeployment({ name: app.metadata.name, namespace: 'default' }),
        (e: { code?: number }) => e.code === 404,
        how,
      );
      assert.equal((await handle.query(statusQuery)).rolloutUndone, 'removed', how);
    }
  });
});
