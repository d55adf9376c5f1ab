/**
 * The product/harness boundary is a lint rule (eslint.config.js): product code under src/ may not import the
 * emulators, the dev stack, tests or a dev-only package, and workflow code stays deterministic. These tests lint
 * small sources placed at product paths, so the rule is proven to bite, not just configured.
 */
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { ESLint } from 'eslint';

const root = fileURLToPath(new URL('../../', import.meta.url));
const eslint = new ESLint({ cwd: root });

async function problems(path: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: `${root}${path}` });
  return (result?.messages ?? []).map((m) => `${m.ruleId}: ${m.message}`);
}

describe('lint keeps the product apart from its harness', () => {
  for (const [what, source] of [
    ['the GitHub emulator package', "import { startGitHubEmulator } from '@flui/github-emulator';"],
    ['the dev stack', "import { startDevServer } from '../dev/temporal.ts';"],
    ['a test helper', "import { useTemporal } from '../test/helpers/temporal.ts';"],
    ['a dev-only package', "import { TestWorkflowEnvironment } from '@temporalio/testing';"],
  ] as const) {
    it(`refuses ${what} in src/`, async () => {
      const found = await problems('src/zz-probe.ts', `${source}\nexport const used = [${source.split(' ')[2]}];\n`);
      assert.ok(
        found.some((p) => p.includes('no-restricted-imports')),
        `expected a restricted-import error, got ${JSON.stringify(found)}`,
      );
    });
  }

  it('refuses the harness in workflow code too, and a Node built-in there', async () => {
    const found = await problems(
      'src/workflows/zz-probe.ts',
      "import { startGitHubEmulator } from '@flui/github-emulator';\nimport { readFileSync } from 'node:fs';\nexport const used = [startGitHubEmulator, readFileSync];\n",
    );
    assert.equal(found.filter((p) => p.includes('no-restricted-imports')).length, 2, JSON.stringify(found));
  });

  it('lets the dev stack and tests import the product and the emulator', async () => {
    const source =
      "import { startGitHubEmulator } from '@flui/github-emulator';\nimport { loadConfig } from '../src/config.ts';\nexport const used = [startGitHubEmulator, loadConfig];\n";
    assert.deepEqual(await problems('dev/zz-probe.ts', source), []);
  });
});
