/**
 * The compiled output (dist/) that tests start as processes, as users do: `bin/flui.js` and `npm run worker` run it,
 * never the sources. Built once per test process with `tsc -b`, which returns at once when dist/ is up to date.
 */
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
let built: Promise<void> | undefined;

/** Brings dist/ up to date with src/ (`npm run build`); rejects with the compiler's output when that fails. */
export function ensureBuilt(): Promise<void> {
  built ??= new Promise<void>((resolve, reject) => {
    const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
    execFile(process.execPath, [tsc, '-b', 'tsconfig.build.json'], { cwd: ROOT }, (err, stdout, stderr) => {
      if (err) reject(new Error(`building dist/ (npm run build) failed:\n${stdout}${stderr}`));
      else resolve();
    });
  });
  return built;
}
