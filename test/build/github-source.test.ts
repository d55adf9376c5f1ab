/**
 * The GitHub source of a self-hosted build: the tarball endpoint at the exact commit through the same Octokit clients
 * the GitHub backend uses, against the emulator (responses checked against GitHub's OpenAPI description), then a real
 * buildah build and push. Also: the branch resolved through the API, a commit GitHub does not have, and a token that
 * cannot see the repository.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { ServiceError } from '../../src/errors.ts';
import { resolveCommit, runBuild, type BuilderSettings, type BuildSpec } from '../../src/build/index.ts';
import { useGitHubEmulator } from '../helpers/github-emulator.ts';
import { useRegistry } from '../helpers/registry.ts';
import { useBuilderRoot, imageLabels, registryDigest, seedBase, settingsFor } from './helpers.ts';

describe('GitHub tarball source (emulator, real buildah and registry)', () => {
  const github = useGitHubEmulator();
  const registry = useRegistry();
  const builderRoot = useBuilderRoot();
  let settings: BuilderSettings;

  before(async () => {
    const root = builderRoot();
    const base = settingsFor(root, registry().host);
    await seedBase('busybox', root, base);
    await github().createRepo({
      owner: 'acme',
      name: 'web',
      files: {
        'app/Dockerfile': 'FROM busybox\nCOPY . /app\nRUN cat /app/version.txt\nLABEL from=github\n',
        'app/version.txt': 'one\n',
        'README.md': '# web\n',
      },
    });
    settings = { ...base, github: { apiUrl: github().url, auth: { kind: 'token', token: github().createToken() } } };
  });

  function spec(commit: string, more: Partial<BuildSpec> = {}): BuildSpec {
    return {
      buildId: `gh-${commit.slice(0, 8)}-${Date.now()}`,
      app: 'acme.web',
      source: { kind: 'github', repository: 'acme/web', commit },
      context: 'app',
      dockerfile: 'Dockerfile',
      buildArgs: {},
      image: `${registry().host}/acme/web`,
      tags: [commit],
      timeoutMs: 60_000,
      ...more,
    };
  }

  it('builds the commit a branch pointed to, from the tarball, after the branch moved', async () => {
    const commit = await resolveCommit({ kind: 'github', repository: 'acme/web', branch: 'main' }, settings);
    assert.match(commit, /^[0-9a-f]{40}$/);
    github().push('acme/web', 'main', { 'app/version.txt': 'two\n' });
    const lines: string[] = [];
    const result = await runBuild(spec(commit), settings, { onLog: (l) => lines.push(l) });
    assert.ok(lines.includes('one'), lines.join('\n'));
    assert.equal(await registryDigest(registry().url, 'acme/web', commit), result.digest);
    assert.equal((await imageLabels(registry().url, 'acme/web', commit)).from, 'github');
    // The token went to GitHub only, never into the log.
    const token = (settings.github!.auth as { token: string }).token;
    assert.ok(!lines.some((l) => l.includes(token)));
  });

  it('a commit GitHub does not have is "not-found", before any build starts', async () => {
    await assert.rejects(runBuild(spec('0'.repeat(40)), settings, {}), (err: unknown) => {
      assert.ok(err instanceof ServiceError, String(err));
      assert.equal(err.kind, 'not-found');
      return true;
    });
  });

  it('a token that cannot see the repository is refused as not found, and nothing is pushed', async () => {
    const commit = await resolveCommit({ kind: 'github', repository: 'acme/web', branch: 'main' }, settings);
    const blind = {
      ...settings,
      github: { apiUrl: github().url, auth: { kind: 'token' as const, token: github().createToken({ repos: [] }) } },
    };
    await assert.rejects(runBuild(spec(commit, { tags: ['blind'] }), blind, {}), (err: unknown) => {
      assert.ok(err instanceof ServiceError, String(err));
      assert.ok(['not-found', 'unauthorized'].includes(err.kind), err.kind);
      assert.equal(err.retryable, false);
      return true;
    });
    assert.equal(await registryDigest(registry().url, 'acme/web', 'blind'), undefined);
  });
});
