/**
 * With a data dir the emulator keeps what it acknowledged across a restart: projects, tokens, variables and
 * pipelines, and a pipeline still pending or running when it stopped runs to completion in the new process.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { startGitLabEmulator } from '../src/index.ts';
import { api, eventually } from './support.ts';

const CI = `build:\n  stage: build\n  script:\n    - echo built\n`;

describe('GitLab emulator durability', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'gitlab-emulator-'));
  after(() => rmSync(dataDir, { recursive: true, force: true }));

  it('keeps projects, tokens, variables and pipelines, and finishes a pipeline interrupted by a restart', async () => {
    const first = await startGitLabEmulator({ dataDir, runner: { pendingMs: 10, buildMs: 10 } });
    const path = 'acme/durable';
    let token: string;
    let id: number;
    try {
      await first.createProject({ path, files: { '.gitlab-ci.yml': CI } });
      token = first.createToken({ projects: [path] });
      const v = await api(first, token, 'POST', `/projects/${encodeURIComponent(path)}/variables`, {
        key: 'SECRET',
        value: 'c2VjcmV0LXZhbHVl',
        masked_and_hidden: true,
      });
      assert.equal(v.status, 201);
      first.faults.keepPending(true);
      const created = await api(first, token, 'POST', `/projects/${encodeURIComponent(path)}/pipeline`, {
        ref: 'main',
      });
      assert.equal(created.status, 201);
      id = (created.body as { id: number }).id;
    } finally {
      await first.stop();
    }

    const second = await startGitLabEmulator({ dataDir, runner: { pendingMs: 10, buildMs: 10 } });
    try {
      assert.equal(second.variableValue(path, 'SECRET'), 'c2VjcmV0LXZhbHVl');
      const status = await eventually(async () => {
        const res = await api(second, token, 'GET', `/projects/${encodeURIComponent(path)}/pipelines/${id}`);
        const s = (res.body as { status: string }).status;
        return s === 'success' || s === 'failed' ? s : undefined;
      }, 'the resumed pipeline');
      assert.equal(status, 'success');
      assert.match(second.trace(path, second.pipelines(path)[0]!.jobs[0]!.id)!, /built/);
      assert.deepEqual(second.contract.violations, []);
    } finally {
      await second.stop();
    }
  });
});
