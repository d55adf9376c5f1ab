/**
 * Deploys recorded from real runs (test/workflows/histories, see record-histories.ts) replayed with the SDK's
 * replayer against the current workflow code: a change to deploy.ts that a deploy in flight could not survive fails
 * here in seconds, without a server. The histories include deploys recorded with the code from before the
 * `undo-cancelled-rollout` patch; the replayer is also shown to fail on code changed without a patch, and on the
 * patch dropped.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import {
  DefaultLogger,
  Runtime,
  Worker,
  type ReplayResult,
  type WorkflowBundleWithSourceMap,
} from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import { recordedHistories } from './history-files.ts';
import { SCENARIOS } from './record-histories.ts';
import { bundleSrc, workingTreeSrc, type SourceFiles } from './workflow-code.ts';

// The replays meant to fail would each log their nondeterminism at WARN: keep the output to real problems.
Runtime.install({
  logger: new DefaultLogger('ERROR'),
  telemetryOptions: { logging: { filter: { core: 'ERROR', other: 'ERROR' }, forward: {} } },
});

type Recorded = Awaited<ReturnType<typeof recordedHistories>>;

/**
 * Histories the current code cannot replay, and why. Each must still fail (so a fix shows here); any other failure is
 * a regression. The rollout's cancellation type changed to WAIT_CANCELLATION_COMPLETED with the undo (af7f632), outside
 * the `undo-cancelled-rollout` patch: a deploy the older code cancelled mid-rollout requested the cancel and closed in
 * one workflow task, where the current code first waits for the rollout to report its cancellation.
 */
const KNOWN_INCOMPATIBLE: Record<string, RegExp> = {
  'before-undo-cancelled-mid-rollout':
    /No command scheduled for event HistoryEvent\(id: \d+, UpsertWorkflowSearchAttributes\)/,
  'before-undo-cancelled-by-signal-mid-rollout':
    /No command scheduled for event HistoryEvent\(id: \d+, UpsertWorkflowSearchAttributes\)/,
};

/** The patches a history recorded (`patched()` markers). */
function patchesOf(history: Recorded[number]['history']): string[] {
  return (history.events ?? []).flatMap((e) => {
    const data = e.markerRecordedEventAttributes?.details?.['patch-data']?.payloads?.[0]?.data;
    return data ? [(JSON.parse(Buffer.from(data).toString('utf8')) as { id: string }).id] : [];
  });
}

async function replay(bundle: WorkflowBundleWithSourceMap, histories: Recorded): Promise<Map<string, ReplayResult>> {
  const results = new Map<string, ReplayResult>();
  const replays = Worker.runReplayHistories(
    { workflowBundle: bundle, replayName: 'flui-replay' },
    histories.map(({ name, history }) => ({ workflowId: name, history })),
  );
  for await (const result of replays) results.set(result.workflowId, result);
  return results;
}

/** The working tree's src/ with deploy.ts edited by `edit`, which must change it. */
async function withDeployEdited(edit: (text: string) => string): Promise<SourceFiles> {
  const files = await workingTreeSrc();
  const path = 'src/workflows/deploy.ts';
  const before = files.get(path)!;
  const after = edit(before);
  assert.notEqual(after, before, `the edit no longer applies to ${path}: update this test to its current shape`);
  return files.set(path, after);
}

describe('recorded deploy histories', () => {
  let histories: Recorded;
  let current: WorkflowBundleWithSourceMap;
  before(async () => {
    histories = await recordedHistories();
    current = await bundleSrc(await workingTreeSrc());
  });

  it('cover every scenario of record-histories.ts, and deploys from before the undo-cancelled-rollout patch', () => {
    const names = new Set(histories.map((h) => h.name));
    const missing = SCENARIOS.filter((s) => !names.has(s.name)).map((s) => s.name);
    assert.deepEqual(missing, [], 'record them: npm run record-histories');
    assert.ok(names.has('before-undo-cancelled-mid-rollout'));
  });

  it('replay with the current workflow code (but for the known incompatible ones, which still fail)', async () => {
    const results = await replay(current, histories);
    assert.equal(results.size, histories.length, 'every history was replayed');
    const failed = [...results.values()].filter((r) => r.error && !(r.workflowId in KNOWN_INCOMPATIBLE));
    assert.deepEqual(
      failed.map((r) => `${r.workflowId}: ${r.error?.message}`),
      [],
      'a deploy in flight would fail on this code: guard the change with patched()',
    );
    for (const [name, reason] of Object.entries(KNOWN_INCOMPATIBLE)) {
      const error = results.get(name)?.error;
      assert.ok(error instanceof DeterminismViolationError, `${name} replays now: drop it from KNOWN_INCOMPATIBLE`);
      assert.match(error.message, reason, name);
    }
  });

  it('fail to replay when the workflow schedules an activity the histories do not have', async () => {
    const altered = await bundleSrc(
      await withDeployEdited((text) =>
        text.replace(
          /export async function deployWorkflow\([\s\S]*?\)\s*:\s*Promise<\w+>\s*\{/,
          (start) =>
            `${start}\n  await proxyActivities<DeployActivities>({ startToCloseTimeout: '1 minute' })` +
            `.resolveImage({ image: 'an extra call' });`,
        ),
      ),
    );
    const results = await replay(altered, histories);
    for (const { name } of histories) {
      const error = results.get(name)?.error;
      assert.ok(error instanceof DeterminismViolationError, `${name}: ${String(error)}`);
    }
  });

  it('fail to replay the deploys that recorded the undo-cancelled-rollout patch once patched() is dropped', async () => {
    const patchedOnes = histories.filter((h) => patchesOf(h.history).includes('undo-cancelled-rollout'));
    assert.ok(
      patchedOnes.some((h) => h.name === 'cancelled-mid-rollout'),
      'the patch is recorded where a cancel undoes a rollout',
    );
    const unpatched = await bundleSrc(
      await withDeployEdited((text) => text.replace("patched('undo-cancelled-rollout')", 'true')),
    );
    const results = await replay(unpatched, histories);
    const failing = [...results.values()].filter((r) => r.error).map((r) => r.workflowId);
    assert.deepEqual(failing.sort(), [...patchedOnes.map((h) => h.name), ...Object.keys(KNOWN_INCOMPATIBLE)].sort());
    for (const name of failing) assert.ok(results.get(name)?.error instanceof DeterminismViolationError, name);
  });
});
