/**
 * The GitHub emulator for a suite (packages/github-emulator), with its contract check on: a test during which the
 * emulator sent anything GitHub's OpenAPI description does not allow fails (an `afterEach` hook), and the counts of
 * what was checked are printed when the suite ends.
 */
import assert from 'node:assert/strict';
import { appendFileSync } from 'node:fs';
import { after, afterEach } from 'node:test';
import { startGitHubEmulator, type GitHubEmulator, type GitHubEmulatorOptions } from '@flui/github-emulator';
import { useServer } from './suite.ts';

/** Short simulated durations, so runs complete in well under a second. */
export const FAST_RUNNER = { queuedMs: 50, buildMs: 200 };

export function useGitHubEmulator(opts: GitHubEmulatorOptions = {}): () => GitHubEmulator {
  const get = useServer(() => startGitHubEmulator({ runner: FAST_RUNNER, ...opts }));
  let seen = 0;
  afterEach(() => {
    const violations = get().contract.violations;
    const fresh = violations.slice(seen);
    seen = violations.length;
    assert.deepEqual(fresh, [], "emulator responses during this test must match GitHub's OpenAPI description");
  });
  after(() => printContract(get()));
  return get;
}

/**
 * Prints what the contract check covered. With FLUI_CONTRACT_LOG set, also appends it there as a JSON line, so
 * totals over several test files (each its own process) can be added up.
 */
export function printContract(github: GitHubEmulator): void {
  const { operations, responses, violations } = github.contract.summary();
  process.stdout.write(
    `# GitHub contract: ${responses} responses of ${operations} operations checked, ${violations.length} violations\n`,
  );
  const log = process.env.FLUI_CONTRACT_LOG;
  if (log) {
    const line = { operations: [...github.contract.operations], responses, violations: violations.length };
    appendFileSync(log, `${JSON.stringify(line)}\n`);
  }
}

/** Fails when the emulator sent anything GitHub's description does not allow; prints what was checked. */
export function assertContract(github: GitHubEmulator): void {
  printContract(github);
  assert.deepEqual(github.contract.violations, [], "emulator responses must match GitHub's OpenAPI description");
}
