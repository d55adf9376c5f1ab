/**
 * The workflow's contract as its readers rely on it: ids and run names round-trip, foreign names are refused, and
 * memos recorded by older runs still read. No servers.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  ciRunKey,
  ciRunName,
  deployMemo,
  formatDeployId,
  initialStatus,
  isSettled,
  isTerminal,
  parseCiRunName,
  parseDeployId,
  readDeployMemo,
  type DeployRequest,
} from '../../src/workflows/contract.ts';

describe('workflow contract', () => {
  it('round-trips deploy ids, run keys and run names, and refuses anything else', () => {
    const deployId = formatDeployId('shop', 'web-2', 'mx5ouqrx934494');
    assert.deepEqual(parseDeployId(deployId), {
      deployId,
      namespace: 'shop',
      app: 'web-2',
      nonce: 'mx5ouqrx934494',
      workflowId: 'deploy-shop.web-2',
    });
    assert.deepEqual(parseCiRunName(ciRunName(ciRunKey(deployId, 1))), {
      ...parseDeployId(deployId),
      runKey: deployId,
      attempt: 1,
    });
    assert.equal(parseCiRunName(ciRunName(ciRunKey(deployId, 3)))?.attempt, 3);
    for (const name of ['flui ', 'CI', 'flui shop.web', 'flui Shop.web.abcd', 'flui -a.web.abcd', `flui ${deployId}/x`])
      assert.equal(parseCiRunName(name), undefined, name);
    assert.equal(parseCiRunName(deployId), undefined, 'a run name carries the prefix');
    assert.equal(parseDeployId(`${deployId}/2`), undefined, 'a run key is not a deploy id');
    assert.throws(() => formatDeployId('shop', 'web', 'NOT-A-NONCE'), /not a valid deploy id/);
  });

  it('records the status in the memo and reads it back, also from memos older runs wrote with nulls', () => {
    const request: DeployRequest = {
      deployId: 'shop.web.abcd1',
      kind: 'Rollback',
      namespace: 'shop',
      app: 'web',
      policy: 'supersede',
    };
    const status = { ...initialStatus(request), phase: 'cancelled' as const, cancelled: { by: 'signal' as const } };
    const memo = JSON.parse(JSON.stringify(deployMemo(status))) as Record<string, unknown>;
    assert.deepEqual(readDeployMemo(memo), {
      deployId: 'shop.web.abcd1',
      kind: 'Rollback',
      phase: 'cancelled',
      attempt: 1,
      timings: [],
      cancelled: { by: 'signal' },
    });
    const older = {
      deploy: {
        deployId: 'shop.web.abcd0',
        kind: 'Application',
        phase: 'failed',
        attempt: 2,
        commit: null,
        ciRun: null,
        image: null,
        digest: null,
        error: 'CI run 1 concluded "failure"',
        timings: [],
      },
    };
    assert.deepEqual(readDeployMemo(older), {
      deployId: 'shop.web.abcd0',
      kind: 'Application',
      phase: 'failed',
      attempt: 2,
      error: 'CI run 1 concluded "failure"',
      timings: [],
    });
    assert.equal(readDeployMemo({}), undefined);
    assert.equal(readDeployMemo({ deploy: 'x' }), undefined);
  });

  it('says which phases are over and which wait for a person', () => {
    assert.deepEqual(
      (['queued', 'building', 'awaiting-retry', 'succeeded', 'failed', 'cancelled', 'superseded'] as const).map((p) => [
        isTerminal(p),
        isSettled(p),
      ]),
      [
        [false, false],
        [false, false],
        [false, true],
        [true, true],
        [true, true],
        [true, true],
        [true, true],
      ],
    );
  });
});
