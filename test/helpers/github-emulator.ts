/**
 * The GitHub emulator for a suite (src/emulator/github). Its contract check is on: after the suite, any response that
 * did not match GitHub's OpenAPI description fails the suite, and the counts are printed.
 */
import assert from 'node:assert/strict';
import { after } from 'node:test';
import {
  startGitHubEmulator,
  type GitHubEmulator,
  type GitHubEmulatorOptions,
} from '../../src/emulator/github/index.ts';
import { useServer } from './suite.ts';

export function useGitHubEmulator(opts: GitHubEmulatorOptions = {}): () => GitHubEmulator {
  const get = useServer(() => startGitHubEmulator({ runner: { queuedMs: 50, buildMs: 200 }, ...opts }));
  after(() => assertContract(get()));
  return get;
}

/** Fails when the emulator sent anything GitHub's description does not allow; prints what was checked. */
export function assertContract(github: GitHubEmulator): void {
  const { operations, responses, violations } = github.contract;
  process.stdout.write(
    `# GitHub contract: ${responses} responses of ${operations.size} operations checked, ${violations.length} violations\n`,
  );
  assert.deepEqual(violations, [], "emulator responses must match GitHub's OpenAPI description");
}
