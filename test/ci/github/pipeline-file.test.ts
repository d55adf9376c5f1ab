/**
 * The generated pipeline file passes actionlint (installed by `npm run setup`). Its rendering is checked without any
 * tool in pipeline-file.unit.test.ts.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { pipelineFileName, renderPipelineFile } from '../../../src/ci/github/pipeline-file.ts';
import { findTool } from '../../../dev/tools.ts';
import { PIPELINE_MANIFESTS as MANIFESTS } from '../../fixtures/pipeline-manifests.ts';

const execFileAsync = promisify(execFile);

describe('the generated pipeline file', () => {
  let actionlint: string;
  let dir: string;
  /** Set when a check fails: the rendered files stay for a look. */
  let keep = false;
  before(async () => {
    actionlint = findTool('actionlint', 'FLUI_ACTIONLINT');
    dir = await mkdtemp(join(tmpdir(), 'flui-actionlint-'));
  });
  after(async () => {
    if (keep) process.stdout.write(`# rendered files kept in ${dir}\n`);
    else await rm(dir, { recursive: true, force: true });
  });

  async function lint(files: Record<string, string>): Promise<string> {
    const paths: string[] = [];
    for (const [name, content] of Object.entries(files)) {
      const path = join(dir, name);
      await writeFile(path, content);
      paths.push(path);
    }
    try {
      await execFileAsync(actionlint, ['-no-color', '-oneline', ...paths]);
      return '';
    } catch (err) {
      const { stdout, stderr, code } = err as { stdout: string; stderr: string; code: number };
      assert.equal(code, 1, `actionlint crashed (exit ${code}): ${stderr}`);
      return stdout;
    }
  }

  it('passes actionlint for several manifests', async () => {
    const findings = await lint(Object.fromEntries(MANIFESTS.map((m) => [pipelineFileName(m), renderPipelineFile(m)])));
    keep ||= findings !== '';
    assert.equal(findings, '', `actionlint findings (files in ${dir}):\n${findings}`);
  });

  it('is a check that can fail: actionlint reports a broken variant of the file', async () => {
    const broken = renderPipelineFile(MANIFESTS[0]!).replace('${{ inputs.deploy_id }}', '${{ inputs.deploy_idd }}');
    assert.match(await lint({ 'broken.yml': broken }), /deploy_idd/);
  });
});
