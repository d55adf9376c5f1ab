/**
 * The control API under /_emulator/ (for processes that did not start the emulator) and the shell entry point
 * (main.ts): projects, tokens and faults set over HTTP act on the API exactly as the in-process object's do.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { useGitLabEmulator } from '../../../test/helpers/gitlab-emulator.ts';
import { api } from './support.ts';

const post = async (url: string, body: unknown) => {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
};

describe('GitLab emulator control API', () => {
  const gitlab = useGitLabEmulator();

  it('creates projects and tokens, injects faults, reports records; refuses bad bodies with a sentence', async () => {
    const gl = gitlab();
    const control = `${gl.url}/_emulator`;
    const created = await post(`${control}/projects`, { path: 'acme/ops/web', files: { 'a.txt': 'a' } });
    assert.equal(created.status, 201);
    const { token } = (await post(`${control}/tokens`, { projects: ['acme/ops/web'], role: 'developer' })).body as {
      token: string;
    };
    assert.equal((await api(gl, token, 'GET', `/projects/${encodeURIComponent('acme/ops/web')}`)).status, 200);
    const commit = await post(`${control}/projects/${encodeURIComponent('acme/ops/web')}/commits`, {
      branch: 'main',
      files: { 'b.txt': 'b' },
    });
    assert.match(String(commit.body.sha), /^[0-9a-f]{40}$/);
    assert.equal(gl.file('acme/ops/web', 'b.txt'), 'b');

    assert.equal((await post(`${control}/faults/outage`, { requests: 1 })).status, 200);
    assert.equal((await api(gl, token, 'GET', `/projects/${encodeURIComponent('acme/ops/web')}`)).status, 503);
    const records = (await (await fetch(`${control}/records`)).json()) as { records: { outageFailures: number } };
    assert.equal(records.records.outageFailures, 1);

    const bad = await post(`${control}/faults/latency`, { ms: -1 });
    assert.deepEqual(bad, { status: 422, body: { error: '"ms" must be a number ≥ 0' } });
    const missing = await fetch(`${control}/projects/${encodeURIComponent('no/such')}/pipelines`);
    assert.equal(missing.status, 404);
    await missing.body?.cancel();
  });

  it('starts from a shell and stops on SIGTERM', async () => {
    const main = fileURLToPath(new URL('../src/main.ts', import.meta.url));
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', main, '--project', 'acme/shell/app', '--version', '17.4.0'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    try {
      let out = '';
      child.stdout.setEncoding('utf8');
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (d: string) => {
          out += d;
          if (out.includes('control API')) resolve();
        });
        child.once('exit', (code) => reject(new Error(`exited ${code}: ${out}`)));
      });
      const url = /GITLAB_URL=(\S+)/.exec(out)![1]!;
      const token = /GITLAB_TOKEN=(\S+)/.exec(out)![1]!;
      const res = await fetch(`${url}/api/v4/projects/${encodeURIComponent('acme/shell/app')}`, {
        headers: { 'private-token': token },
      });
      assert.equal(res.status, 200);
      assert.equal(((await res.json()) as { path_with_namespace: string }).path_with_namespace, 'acme/shell/app');
      child.kill('SIGTERM');
      const [code] = (await once(child, 'exit')) as [number];
      assert.equal(code, 0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
