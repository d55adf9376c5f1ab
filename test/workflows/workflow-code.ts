/**
 * Workflow code other than the working tree's, bundled for a worker or the replayer: `src/` as it was at a commit
 * (to record histories with older code) or with an edit (to show the replayer catches a non-deterministic change).
 */
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode, DefaultLogger, type WorkflowBundleWithSourceMap } from '@temporalio/worker';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** File contents by path relative to the repository (`src/...`). */
export type SourceFiles = Map<string, string>;

/** `src/` of the working tree. */
export async function workingTreeSrc(): Promise<SourceFiles> {
  const files: SourceFiles = new Map();
  for (const entry of await readdir(join(ROOT, 'src'), { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    files.set(relative(ROOT, path), await readFile(path, 'utf8'));
  }
  return files;
}

/** `src/` as it was at `commit` (needs the repository's history). */
export function srcAt(commit: string): SourceFiles {
  const git = (...args: string[]) => execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', maxBuffer: 1 << 26 });
  const files: SourceFiles = new Map();
  for (const path of git('ls-tree', '-r', '--name-only', commit, 'src').split('\n').filter(Boolean)) {
    files.set(path, git('show', `${commit}:${path}`));
  }
  return files;
}

/**
 * Bundles `src/workflows/index.ts` of `files`. They are written outside the repository (the SDK's bundler compiles
 * TypeScript only outside node_modules), next to a link to its node_modules so that imports resolve as in the tree.
 */
export async function bundleSrc(files: SourceFiles): Promise<WorkflowBundleWithSourceMap> {
  const dir = await mkdtemp(join(tmpdir(), 'flui-workflow-code-'));
  try {
    for (const [path, text] of files) {
      await mkdir(dirname(join(dir, path)), { recursive: true });
      await writeFile(join(dir, path), text);
    }
    await symlink(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
    return await bundleWorkflowCode({
      workflowsPath: join(dir, 'src/workflows/index.ts'),
      logger: new DefaultLogger('WARN'),
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
