/**
 * Finding the real servers and tools that `npm run setup` puts on the machine. Order: an explicit environment
 * variable, then `~/.cache/flui/bin`, then PATH. A missing tool is an error that says how to get it.
 */
import { accessSync, constants } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';

export const CACHE_DIR = process.env.FLUI_CACHE ?? join(homedir(), '.cache', 'flui');
export const BIN_DIR = process.env.FLUI_BIN ?? join(CACHE_DIR, 'bin');

export class MissingToolError extends Error {
  constructor(name: string, envVar: string | undefined, hint: string) {
    super(
      `${name} not found${envVar ? ` (checked $${envVar},` : ' (checked'} ${BIN_DIR} and PATH). ${hint}`.replace(
        /\s+$/,
        '',
      ),
    );
    this.name = 'MissingToolError';
  }
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Absolute path of `name`, or undefined. */
export function lookupTool(name: string, envVar?: string): string | undefined {
  const fromEnv = envVar ? process.env[envVar] : undefined;
  if (fromEnv) return fromEnv;
  const cached = join(BIN_DIR, name);
  if (isExecutable(cached)) return cached;
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && isExecutable(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

/** Absolute path of `name`; throws {@link MissingToolError} with `hint` (default: run `npm run setup`). */
export function findTool(name: string, envVar?: string, hint = 'Run `npm run setup` to install it.'): string {
  const path = lookupTool(name, envVar);
  if (path === undefined) throw new MissingToolError(name, envVar, hint);
  if (!isExecutable(path)) throw new MissingToolError(name, envVar, `${envVar}=${path} is not executable.`);
  return path;
}
