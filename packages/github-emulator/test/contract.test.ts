/**
 * The contract check can fail: a deliberately wrong response is caught and fails the test that caused it, as do
 * undocumented statuses, unknown operations and wrong webhook payloads.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ContractChecker } from '../src/contract.ts';
import { useGitHubEmulator } from '../../../test/helpers/github-emulator.ts';
import { octokitFor } from './support.ts';

/** GitHub's own example of a job, from its description (which leaves out the required `created_at`). */
const JOB = (
  createRequire(import.meta.url)('@octokit/openapi/generated/api.github.com.json') as {
    components: { examples: { job: { value: Record<string, unknown> } } };
  }
).components.examples.job.value;

describe("GitHub emulator: the contract check against GitHub's OpenAPI description", () => {
  const github = useGitHubEmulator();

  it('records a violation for a response that does not match, naming the operation and the field', async () => {
    await github().createRepo({ owner: 'acme', name: 'contract' });
    const gh = octokitFor(github(), github().createToken());
    const before = github().contract.summary();
    github().faults.corruptNextResponse('/repos/{owner}/{repo}/actions/secrets/public-key', (body) => ({
      ...body,
      key_id: 42,
    }));
    await gh.rest.actions.getRepoPublicKey({ owner: 'acme', repo: 'contract' });
    github().faults.corruptNextResponse('/repos/{owner}/{repo}', (body) => {
      delete body.full_name;
      return body;
    });
    await gh.rest.repos.get({ owner: 'acme', repo: 'contract' });
    // Taken out of the list, so the helper does not fail this test for the violations it provoked.
    const added = github().contract.violations.splice(before.violations.length);
    assert.deepEqual(added, [
      'GET /repos/{owner}/{repo}/actions/secrets/public-key -> 200: body/key_id must be string',
      "GET /repos/{owner}/{repo} -> 200: body must have required property 'full_name'",
    ]);
    assert.equal(github().contract.responses, before.responses + 2);
  });

  it('fails the test during which the emulator broke the contract, and only that one', async () => {
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        '--test',
        '--test-reporter=tap',
        fileURLToPath(new URL('./fixtures/contract-violation.ts', import.meta.url)),
      ],
      // Without the parent runner's context, the child reports and exits like a test run of its own.
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, NODE_TEST_CONTEXT: undefined, FLUI_CONTRACT_LOG: undefined },
      },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const [code] = (await once(child, 'exit')) as [number];
    assert.equal(code, 1, out);
    assert.match(out, /not ok 1 - gets a response that breaks the contract/);
    assert.match(out, /GET \/repos\/\{owner\}\/\{repo\} -> 200: body\/id must be integer/);
    assert.match(out, /\n {4}ok 2 - gets only valid responses/);
  });

  it("reads `nullable` beside an `enum` as GitHub answers (a running job's conclusion is null), nothing more", () => {
    const checker = new ContractChecker();
    const jobs = (conclusion: unknown) => ({
      total_count: 1,
      jobs: [{ ...JOB, created_at: '2020-01-20T17:42:40Z', conclusion }],
    });
    const op = '/repos/{owner}/{repo}/actions/runs/{run_id}/jobs';
    checker.check('GET', op, 200, jobs(null));
    checker.check('GET', op, 200, jobs('success'));
    assert.deepEqual(checker.violations, []);
    checker.check('GET', op, 200, jobs('bogus'));
    assert.deepEqual(checker.violations, [
      `GET ${op} -> 200: body/jobs/0/conclusion must be equal to one of the allowed values`,
    ]);
  });

  it('flags undocumented statuses, unknown operations and wrong webhook payloads', () => {
    const checker = new ContractChecker();
    checker.check('GET', '/repos/{owner}/{repo}', 418, { message: 'teapot', documentation_url: 'x' });
    checker.check('GET', '/repos/{owner}/{repo}/made-up', 200, {});
    checker.check('GET', '/repos/{owner}/{repo}', 404, { message: 'Not Found' });
    checker.checkWebhook('workflow-run-completed', { action: 'completed' });
    checker.checkWebhook('no-such-hook', {});
    assert.deepEqual(checker.violations, [
      'GET /repos/{owner}/{repo} -> 418: GitHub does not document this status for the operation',
      "GET /repos/{owner}/{repo}/made-up: not an operation of GitHub's REST API",
      "GET /repos/{owner}/{repo} -> 404: body must have required property 'documentation_url'",
      "WEBHOOK workflow-run-completed: body must have required property 'repository'",
      'WEBHOOK no-such-hook: not a webhook GitHub describes',
    ]);
    assert.deepEqual(checker.summary().operations, 4);
  });
});
