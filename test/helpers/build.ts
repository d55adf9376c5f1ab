/**
 * The build (dist/) that tests start as processes, as users do: `bin/flui.js` and `npm run worker` run it, never the
 * sources. Brought up to date once per test process by `npm run build` (`tsc -b` returns at once when nothing changed;
 * the CLI bundle takes about a second).
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
let built: Promise<void> | undefined;

/** Runs `npm run build`; rejects with the compiler's output when that fails. */
export function ensureBuilt(): Promise<void> {
  built ??= new Promise<void>((resolve, reject) => {
    execFile('npm', ['run', '--silent', 'build'], { cwd: ROOT }, (err, stdout, stderr) => {
      if (err) reject(new Error(`npm run build failed:\n${stdout}${stderr}`));
      else resolve();
    });
  });
  return built;
}
