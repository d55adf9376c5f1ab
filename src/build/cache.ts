/**
 * The layer caches: one buildah storage per app under the cache directory (`apps/<app>/`), so an app's rebuild
 * reuses its own layers (`--layers`) and one app's cache can be dropped whole. A build holds its app's cache with a
 * lock file (`locks/<buildId>`, naming the builder's pid); after each build, caches beyond the budget are removed
 * least recently used first, never one that a live build holds.
 */
import { createHash } from 'node:crypto';
import { chown, mkdir, readdir, rm, stat, utimes, writeFile, unlink, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { directorySize } from './extract.ts';

export interface CacheEntry {
  app: string;
  bytes: number;
  /** When a build last used it (ms). */
  lastUsed: number;
  inUse: boolean;
}

/**
 * Which caches to remove so that the rest fit in `budget`: least recently used first, never one in use. Pure, so the
 * policy is tested without disks.
 */
export function chooseEvictions(entries: readonly CacheEntry[], budget: number): string[] {
  let total = entries.reduce((sum, e) => sum + e.bytes, 0);
  const out: string[] = [];
  for (const e of [...entries].sort((a, b) => a.lastUsed - b.lastUsed || a.app.localeCompare(b.app))) {
    if (total <= budget) break;
    if (e.inUse) continue;
    out.push(e.app);
    total -= e.bytes;
  }
  return out;
}

/** The directory name of an app's cache: readable, and distinct for distinct apps. */
export function cacheName(app: string): string {
  const readable = app
    .toLowerCase()
    .replace(/[^a-z0-9.-]/g, '_')
    .slice(0, 80);
  const hash = createHash('sha256').update(app).digest('hex').slice(0, 8);
  return `${readable}-${hash}`;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface AppCache {
  /** buildah `--root` and `--runroot`. */
  root: string;
  runroot: string;
  /**
   * buildah's state as root (bound over /var/lib/containers in the sandbox, and its HOME): containers/image keeps its
   * blob info cache there (which compressed blob a layer already is, and where it was pushed), so a rebuild does not
   * compress and upload the base's layers again.
   */
  home: string;
  release(): Promise<void>;
}

/** Takes the app's cache for one build (creating it), owned by `owner` (the sandbox's root) when given. */
export async function acquireCache(
  cacheDir: string,
  app: string,
  buildId: string,
  owner?: { uid: number; gid: number },
): Promise<AppCache> {
  const dir = join(cacheDir, 'apps', cacheName(app));
  const locks = join(dir, 'locks');
  await mkdir(locks, { recursive: true });
  const lock = join(locks, buildId.replace(/[^A-Za-z0-9._-]/g, '_'));
  await writeFile(lock, `${process.pid}\n`);
  const root = join(dir, 'storage');
  const runroot = join(dir, 'run');
  const home = join(dir, 'home');
  for (const d of [root, runroot, home]) {
    await mkdir(d, { recursive: true });
    if (owner) await chown(d, owner.uid, owner.gid);
  }
  const now = new Date();
  await utimes(dir, now, now);
  await writeFile(join(dir, 'app'), app);
  return {
    root,
    runroot,
    home,
    release: async () => {
      await unlink(lock).catch(() => undefined);
      // Measured once here, by the build that changed it, so eviction reads sizes instead of walking every cache.
      await writeFile(join(dir, 'size'), String(await directorySize(dir))).catch(() => undefined);
      const t = new Date();
      await utimes(dir, t, t).catch(() => undefined);
    },
  };
}

/** Whether a live build holds the cache at `dir` (stale locks of dead builders are removed). */
async function inUse(dir: string): Promise<boolean> {
  const locks = join(dir, 'locks');
  let held = false;
  for (const name of await readdir(locks).catch(() => [] as string[])) {
    const pid = Number((await readFile(join(locks, name), 'utf8').catch(() => '')).trim());
    if (Number.isInteger(pid) && pid > 0 && alive(pid)) held = true;
    else await unlink(join(locks, name)).catch(() => undefined);
  }
  return held;
}

let evicting: Promise<unknown> = Promise.resolve();

/** Removes caches beyond the budget (one eviction at a time in this process). Returns the apps removed. */
export function evictCaches(cacheDir: string, budgetBytes: number): Promise<string[]> {
  const run = evicting.then(async () => {
    const appsDir = join(cacheDir, 'apps');
    const entries: (CacheEntry & { dir: string })[] = [];
    for (const name of await readdir(appsDir).catch(() => [] as string[])) {
      const dir = join(appsDir, name);
      const st = await stat(dir).catch(() => undefined);
      if (!st?.isDirectory()) continue;
      const recorded = Number(await readFile(join(dir, 'size'), 'utf8').catch(() => ''));
      const bytes = Number.isFinite(recorded) && recorded > 0 ? recorded : await directorySize(dir);
      entries.push({ app: name, dir, bytes, lastUsed: st.mtimeMs, inUse: await inUse(dir) });
    }
    const chosen = chooseEvictions(entries, budgetBytes);
    for (const name of chosen) {
      const dir = join(appsDir, name);
      // Checked again right before: a build may have taken it meanwhile.
      if (await inUse(dir)) continue;
      await rm(dir, { recursive: true, force: true });
    }
    return chosen;
  });
  evicting = run.catch(() => undefined);
  return run;
}
