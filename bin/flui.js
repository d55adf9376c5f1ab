#!/usr/bin/env node
// The `flui` command: runs the TypeScript CLI through tsx's loader.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/client/cli.ts');
process.exitCode = await main(process.argv.slice(2));
