#!/usr/bin/env node
// The `flui` command, run from the build (`npm run build`, which `npm ci` runs too).
//
// Commands that talk only to Temporal run the CLI bundled into one file (dist/cli/flui.cjs) through V8's code cache:
// without it, most of their time goes to parsing the Temporal client's modules again on every call. The cache is kept
// per command beside the bundle, keyed by the bundle's size and time, so a rebuild never meets old code; where it
// cannot be written, commands just run slower. Help, and the commands that also read the cluster (whose Kubernetes
// client is loaded by a dynamic import, which a cached script cannot make on Node 20), load the compiled modules.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import Module, { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';

const dist = fileURLToPath(new URL('../dist/cli/', import.meta.url));
const bundle = join(dist, 'flui.cjs');
if (!existsSync(bundle)) {
  process.stderr.write(
    `flui: not built yet: run \`npm run build\` in ${fileURLToPath(new URL('..', import.meta.url))}\n`,
  );
  process.exit(4);
}
const argv = process.argv.slice(2);
const TEMPORAL_ONLY = ['deploy', 'status', 'cancel', 'retry', 'builds', 'logs'];
const command = argv.find((a) => !a.startsWith('-'));
const help = argv.includes('--help') || argv.includes('-h');

process.exitCode = await (TEMPORAL_ONLY.includes(command) && !help
  ? runCached(command)
  : import(new URL('../dist/cli/main.js', import.meta.url).href).then(({ main }) => main(argv)));

async function runCached(name) {
  const { size, mtimeMs } = statSync(bundle);
  const dir = join(dist, '.code-cache');
  const key = `${size}-${Math.round(mtimeMs)}`;
  const file = join(dir, `${key}-${name}.bin`);
  let cachedData;
  try {
    cachedData = readFileSync(file);
  } catch {
    // the first run of this command since the build
  }
  const script = new vm.Script(Module.wrap(readFileSync(bundle, 'utf8')), { filename: bundle, cachedData });
  const module = { exports: {} };
  script.runInThisContext().call(module.exports, module.exports, createRequire(bundle), module, bundle, dist);
  const code = await module.exports.main(argv);
  if (!cachedData || script.cachedDataRejected) {
    // After the command ran, the cache holds every function it compiled, not just the top level.
    try {
      mkdirSync(dir, { recursive: true });
      for (const old of readdirSync(dir)) if (!old.startsWith(`${key}-`)) rmSync(join(dir, old), { force: true });
      const tmp = `${file}.${process.pid}`;
      writeFileSync(tmp, script.createCachedData());
      renameSync(tmp, file);
    } catch {
      // a read-only install: no cache
    }
  }
  return code;
}
