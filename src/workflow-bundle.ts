/**
 * Prebundles the workflow code into one file (`npm run bundle [-- out.js]`), so workers start without running
 * webpack. Point FLUI_WORKFLOW_BUNDLE at the file.
 */
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode } from '@temporalio/worker';

export async function writeWorkflowBundle(outFile: string): Promise<string> {
  const { code } = await bundleWorkflowCode({
    workflowsPath: fileURLToPath(new URL('./workflows/index.ts', import.meta.url)),
  });
  await writeFile(outFile, code);
  return outFile;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const out = process.argv[2] ?? 'dist/workflow-bundle.js';
  const { mkdir } = await import('node:fs/promises');
  const { dirname } = await import('node:path');
  await mkdir(dirname(out), { recursive: true });
  process.stdout.write(`wrote ${await writeWorkflowBundle(out)}\n`);
}
