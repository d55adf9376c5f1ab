/**
 * `npm run pins:refresh` against the GitHub emulator serving the actions' repositories with release tags, lightweight
 * and annotated: each pin moves to the newest release of its major (or of all, with --major), skipping pre-releases,
 * with an annotated tag followed to its commit; and the pins block it writes is what prettier keeps.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { Octokit } from '@octokit/rest';
import { ACTION_PINS, type ActionPin } from '../../src/ci/github/action-pins.ts';
import { useGitHubEmulator } from '../../test/helpers/github-emulator.ts';
import { refreshPins, replacePins } from '../refresh-action-pins.ts';

const PINS_FILE = fileURLToPath(new URL('../../src/ci/github/action-pins.ts', import.meta.url));

describe('pins:refresh', () => {
  const github = useGitHubEmulator();
  /** The actions' repositories, made by the second test and used by the third. */
  const created = new Set<string>();

  it('leaves action-pins.ts byte-identical when nothing moved', async () => {
    const text = await readFile(PINS_FILE, 'utf8');
    assert.equal(replacePins(text, ACTION_PINS), text);
  });

  it('moves each action to the newest release of its major, following annotated tags to their commit', async () => {
    const token = github().createToken();
    const gh = new Octokit({ baseUrl: github().url, auth: token });
    const expected: Record<string, { sameMajor: ActionPin; anyMajor: ActionPin }> = {};
    for (const [key, pin] of Object.entries(ACTION_PINS)) {
      const [owner, name] = pin.repository.split('/') as [string, string];
      await github().createRepo({ owner, name, files: { 'action.yml': 'name: x\n' } });
      created.add(pin.repository);
      const major = Number(/^v(\d+)/.exec(pin.version)![1]);
      const commit = (label: string) => github().push(pin.repository, 'main', { 'action.yml': `name: ${label}\n` });
      const tag = async (version: string, annotated: boolean) => {
        const sha = commit(version);
        let target = sha;
        if (annotated) {
          const created = await gh.request('POST /repos/{owner}/{repo}/git/tags', {
            owner,
            repo: name,
            tag: version,
            message: `release ${version}`,
            object: sha,
            type: 'commit',
          });
          target = created.data.sha;
        }
        await gh.request('POST /repos/{owner}/{repo}/git/refs', {
          owner,
          repo: name,
          ref: `refs/tags/${version}`,
          sha: target,
        });
        return sha;
      };
      if (pin.version !== `v${major}.0.0`) await tag(`v${major}.0.0`, false);
      await tag(pin.version, false);
      const sameMajor = await tag(`v${major}.10.2`, true); // newest of the major, annotated; 10 > 9 numerically
      await tag(`v${major}.9.9`, false);
      await tag(`v${major}.11.0-rc.1`, false); // a pre-release: skipped
      await tag(`v${major}`, false); // the moving major tag: not a release
      const anyMajor = await tag(`v${major + 1}.0.1`, true);
      expected[key] = {
        sameMajor: { repository: pin.repository, version: `v${major}.10.2`, sha: sameMajor },
        anyMajor: { repository: pin.repository, version: `v${major + 1}.0.1`, sha: anyMajor },
      };
    }

    const within = await refreshPins(ACTION_PINS, { apiUrl: github().url, token });
    for (const [key, e] of Object.entries(expected)) assert.deepEqual(within.pins[key], e.sameMajor, key);
    assert.equal(within.changes.length, Object.keys(ACTION_PINS).length);
    assert.match(within.changes[0]!, /^actions\/checkout: v\d+\.\d+\.\d+ [0-9a-f]{12} → v\d+\.10\.2 [0-9a-f]{12}$/);

    const across = await refreshPins(ACTION_PINS, { apiUrl: github().url, token, major: true });
    for (const [key, e] of Object.entries(expected)) assert.deepEqual(across.pins[key], e.anyMajor, key);

    const text = replacePins(await readFile(PINS_FILE, 'utf8'), within.pins);
    for (const e of Object.values(expected)) assert.ok(text.includes(`sha: '${e.sameMajor.sha}'`));
    assert.ok(text.includes('// pins:begin') && text.includes('// pins:end'));
  });

  it('is a check that can fail: a tag moved to another commit shows as a change of the same version', async () => {
    assert.ok(created.has(ACTION_PINS.checkout.repository), 'runs after the test that tags the repositories');
    const token = github().createToken();
    const pin = ACTION_PINS.checkout;
    const moved = await refreshPins(
      { checkout: { ...pin, version: 'v7.10.2', sha: '0'.repeat(40) } },
      {
        apiUrl: github().url,
        token,
      },
    );
    assert.match(moved.changes[0] ?? '', /v7\.10\.2 000000000000 → v7\.10\.2 [0-9a-f]{12} \(the tag was moved!\)/);
  });
});
