#!/usr/bin/env node
// `flui-builder`: runs self-hosted builds (FLUI_CI=self-hosted), from the build (`npm run build`, which `npm ci` runs
// too). The same as `npm run builder`, without its heap flag (set NODE_OPTIONS=--max-old-space-size=… to cap it).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const entry = new URL('../dist/builder.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write(
    `flui-builder: not built yet: run \`npm run build\` in ${fileURLToPath(new URL('..', import.meta.url))}\n`,
  );
  process.exit(4);
}
const { main } = await import(entry.href);
main().catch((err) => {
  process.stderr.write(`flui-builder: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
