/**
 * The GitLab emulator for a suite (packages/gitlab-emulator), with its contract check on: a test during which the
 * emulator sent anything its JSON Schemas (written from GitLab's API docs) do not allow fails (an `afterEach`
 * hook), and the counts of what was checked are printed when the suite ends.
 */
import assert from 'node:assert/strict';
import { appendFileSync } from 'node:fs';
import { after, afterEach } from 'node:test';
import {
  startGitLabEmulator,
  type EmulatedPipeline,
  type GitLabEmulator,
  type GitLabEmulatorOptions,
} from '@flui/gitlab-emulator';
import { useServer } from './suite.ts';

/** Short simulated durations, so pipelines complete in well under a second. */
export const FAST_GITLAB_RUNNER = { pendingMs: 50, buildMs: 200 };

export function useGitLabEmulator(opts: GitLabEmulatorOptions = {}): () => GitLabEmulator {
  const get = useServer(() => startGitLabEmulator({ runner: FAST_GITLAB_RUNNER, ...opts }));
  let seen = 0;
  afterEach(() => {
    const violations = get().contract.violations;
    const fresh = violations.slice(seen);
    seen = violations.length;
    assert.deepEqual(fresh, [], 'GitLab emulator responses during this test must match the contract schemas');
  });
  after(() => printGitLabContract(get()));
  return get;
}

/** Prints what the contract check covered (and appends it to FLUI_CONTRACT_LOG as a JSON line when set). */
export function printGitLabContract(gitlab: GitLabEmulator): void {
  const { operations, responses, violations } = gitlab.contract.summary();
  process.stdout.write(
    `# GitLab contract: ${responses} responses of ${operations} operations checked, ${violations.length} violations\n`,
  );
  const log = process.env.FLUI_CONTRACT_LOG;
  if (log) {
    const line = {
      service: 'gitlab',
      operations: [...gitlab.contract.operations],
      responses,
      violations: violations.length,
    };
    appendFileSync(log, `${JSON.stringify(line)}\n`);
  }
}

/** Fails when the emulator sent anything the contract does not allow; prints what was checked. */
export function assertGitLabContract(gitlab: GitLabEmulator): void {
  printGitLabContract(gitlab);
  assert.deepEqual(gitlab.contract.violations, [], 'GitLab emulator responses must match the contract schemas');
}

const FINISHED = new Set(['success', 'failed', 'canceled', 'skipped']);

/** A pipeline's final status (GitLab's spelling: `canceled`), or null while it may still change. */
export function pipelineConclusion(pipeline: EmulatedPipeline): string | null {
  return FINISHED.has(pipeline.status) ? pipeline.status : null;
}
