/**
 * Prebundles the workflow code into one file (`npm run bundle [-- out.js]`), so workers start without running
 * webpack. Point FLUI_WORKFLOW_BUNDLE at the file.
 */
import { writeFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode } from '@temporalio/worker';
import { WORKFLOW_INTERCEPTOR_MODULES } from './observability/workflow-modules.ts';

export async function writeWorkflowBundle(outFile: string): Promise<string> {
  const { code } = await bundleWorkflowCode({
    // Beside this module: the sources under tsx, the compiled JavaScript in the build.
    workflowsPath: fileURLToPath(new URL(`./workflows/index${extname(import.meta.url)}`, import.meta.url)),
    // Metrics and tracing interceptors (src/observability/workflow-modules.ts).
    workflowInterceptorModules: WORKFLOW_INTERCEPTOR_MODULES,
  });
  await writeFile(outFile, code);
  return outFile;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const out = process.argv[2] ?? 'dist/workflows.bundle.js';
  const { mkdir } = await import('node:fs/promises');
  const { dirname } = await import('node:path');
  await mkdir(dirname(out), { recursive: true });
  process.stdout.write(`wrote ${await writeWorkflowBundle(out)}\n`);
}
