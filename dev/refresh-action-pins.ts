/**
 * `npm run pins:refresh`: moves every action Flui's generated workflow uses (src/ci/github/action-pins.ts) to the
 * newest release tag of its major version (`-- --major`: the newest release of all) and to the commit that tag points
 * at, then rewrites the pins block of that file. Review the diff and the actions' release notes, then run the tests.
 *
 * Through the GitHub API: GITHUB_API_URL (default https://api.github.com), with GITHUB_TOKEN when set (public
 * repositories need none, but anonymous requests get 60 an hour). Releases are tags `vX.Y.Z`; pre-releases are
 * skipped; an annotated tag is followed to its commit.
 *
 *   npm run pins:refresh                 newest within each major
 *   npm run pins:refresh -- --major      newest overall (review breaking changes)
 *   npm run pins:refresh -- --check      exit 1 when a pin is not the newest (or its tag moved), change nothing
 */
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { Octokit } from '@octokit/rest';
import { ACTION_PINS, type ActionPin } from '../src/ci/github/action-pins.ts';

const PINS_FILE = fileURLToPath(new URL('../src/ci/github/action-pins.ts', import.meta.url));
const RELEASE = /^v(\d+)\.(\d+)\.(\d+)$/;

type Semver = [number, number, number];
const semver = (tag: string): Semver | undefined => {
  const m = RELEASE.exec(tag);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : undefined;
};
const newer = (a: Semver, b: Semver) => a[0] - b[0] || a[1] - b[1] || a[2] - b[2];

export interface RefreshOptions {
  apiUrl: string;
  token?: string;
  /** Cross major versions. */
  major?: boolean;
}

/** The newest release tag of `repository` (within `current`'s major unless `major`), and its commit. */
export async function latestPin(gh: Octokit, pin: ActionPin, opts: { major?: boolean }): Promise<ActionPin> {
  const [owner, repo] = pin.repository.split('/') as [string, string];
  const current = semver(pin.version);
  if (!current) throw new Error(`${pin.repository}: "${pin.version}" is not a vX.Y.Z release tag`);
  const prefix = opts.major ? 'tags/v' : `tags/v${current[0]}.`;
  const refs = (await gh.request('GET /repos/{owner}/{repo}/git/matching-refs/{ref}', { owner, repo, ref: prefix }))
    .data as { ref: string; object: { sha: string; type: string } }[];
  let best: { version: string; v: Semver; object: { sha: string; type: string } } | undefined;
  for (const ref of refs) {
    const version = ref.ref.replace(/^refs\/tags\//, '');
    const v = semver(version);
    if (v && (!best || newer(v, best.v) > 0)) best = { version, v, object: ref.object };
  }
  if (!best) throw new Error(`${pin.repository}: no release tag matches refs/${prefix}`);
  // An annotated tag points at a tag object; follow it (and any tag it points at) to the commit.
  let object = best.object;
  for (let hops = 0; object.type === 'tag'; hops++) {
    if (hops > 5) throw new Error(`${pin.repository}@${best.version}: tags nested too deep`);
    object = (await gh.request('GET /repos/{owner}/{repo}/git/tags/{tag_sha}', { owner, repo, tag_sha: object.sha }))
      .data.object;
  }
  if (object.type !== 'commit') throw new Error(`${pin.repository}@${best.version} points at a ${object.type}`);
  return { repository: pin.repository, version: best.version, sha: object.sha };
}

/** The pins block of action-pins.ts for `pins`, as prettier formats it. */
export function renderPins(pins: Record<string, ActionPin>): string {
  const entries = Object.entries(pins).map(
    ([key, p]) =>
      `  ${key}: {\n    repository: '${p.repository}',\n    version: '${p.version}',\n    sha: '${p.sha}',\n  },\n`,
  );
  return `export const ACTION_PINS = {\n${entries.join('')}} as const satisfies Record<string, ActionPin>;\n`;
}

/** `text` (action-pins.ts) with its pins block replaced. */
export function replacePins(text: string, pins: Record<string, ActionPin>): string {
  const begin = text.indexOf('// pins:begin');
  const end = text.indexOf('// pins:end');
  if (begin < 0 || end < begin) throw new Error('action-pins.ts lost its "// pins:begin" / "// pins:end" markers');
  const startOfBlock = text.indexOf('\n', begin) + 1;
  return text.slice(0, startOfBlock) + renderPins(pins) + text.slice(end);
}

/** Looks up every pin; returns the new pins and a line per action that moved. */
export async function refreshPins(
  current: Record<string, ActionPin>,
  opts: RefreshOptions,
): Promise<{ pins: Record<string, ActionPin>; changes: string[] }> {
  const gh = new Octokit({ baseUrl: opts.apiUrl, ...(opts.token ? { auth: opts.token } : {}) });
  const pins: Record<string, ActionPin> = {};
  const changes: string[] = [];
  for (const [key, pin] of Object.entries(current)) {
    const next = await latestPin(gh, pin, opts);
    pins[key] = next;
    if (next.sha !== pin.sha || next.version !== pin.version) {
      const moved = next.version === pin.version ? ' (the tag was moved!)' : '';
      changes.push(
        `${pin.repository}: ${pin.version} ${pin.sha.slice(0, 12)} → ${next.version} ${next.sha.slice(0, 12)}${moved}`,
      );
    }
  }
  return { pins, changes };
}

async function main(argv: string[]): Promise<number> {
  const check = argv.includes('--check');
  const { pins, changes } = await refreshPins(ACTION_PINS, {
    apiUrl: (process.env.GITHUB_API_URL ?? 'https://api.github.com').replace(/\/+$/, ''),
    token: process.env.GITHUB_TOKEN || undefined,
    major: argv.includes('--major'),
  });
  for (const line of changes) process.stdout.write(`${line}\n`);
  if (changes.length === 0) {
    process.stdout.write('every action is pinned to its newest release\n');
    return 0;
  }
  if (check) return 1;
  await writeFile(PINS_FILE, replacePins(await readFile(PINS_FILE, 'utf8'), pins));
  process.stdout.write(`rewrote ${PINS_FILE}: review the release notes of the actions above, then run the tests\n`);
  return 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`pins:refresh: ${(err as Error).message}\n`);
      process.exit(2);
    },
  );
}
