/**
 * GitHub Actions settings of the worker that only the Actions backend reads.
 */

export const ENVIRONMENT_VARIABLE = 'FLUI_GITHUB_ENVIRONMENT';

/**
 * FLUI_GITHUB_ENVIRONMENT: the GitHub Environment the build job runs in. Its secrets then hold the push credential
 * (only jobs in that environment can read them) and its protection rules (allowed branches, reviewers) apply.
 */
export function parseGitHubEnvironment(env: NodeJS.ProcessEnv): { value: string | undefined; problems: string[] } {
  const raw = env[ENVIRONMENT_VARIABLE]?.trim();
  if (!raw) return { value: undefined, problems: [] };
  if (!/^[A-Za-z0-9][A-Za-z0-9 ._-]{0,254}$/.test(raw)) {
    return {
      value: undefined,
      problems: [
        `${ENVIRONMENT_VARIABLE} must be a GitHub Environment name (letters, digits, spaces, ".", "_", "-"; at most 255), not ${JSON.stringify(raw)}`,
      ],
    };
  }
  return { value: raw, problems: [] };
}
