/**
 * The layer caches on disk: a cache a live build holds is never removed, the least recently used go first once the
 * caches outgrow the budget, and a dead builder's lock does not pin a cache forever. Real directories, no buildah.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { acquireCache, cacheName, evictCaches } from '../../src/build/cache.ts';

describe('layer caches on disk', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'flui-cache-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  async function filled(app: string, bytes: number, ageSeconds: number): Promise<void> {
    const cache = await acquireCache(dir, app, `build-${app}`);
    await writeFile(join(cache.root, 'layer'), Buffer.alloc(bytes));
    await cache.release();
    const t = new Date(Date.now() - ageSeconds * 1000);
    await utimes(join(dir, 'apps', cacheName(app)), t, t);
  }
  const apps = async () => (await readdir(join(dir, 'apps'))).sort();

  it('removes the least recently used caches until the rest fit, never one a live build holds', async () => {
    await filled('old', 4000, 300);
    await filled('mid', 4000, 200);
    await filled('new', 4000, 100);
    const held = await acquireCache(dir, 'old', 'running-build');
    // `old` is the least recently used, but held: `mid` goes instead.
    assert.deepEqual(await evictCaches(dir, 9000), [cacheName('mid')]);
    assert.deepEqual(await apps(), [cacheName('new'), cacheName('old')].sort());
    // Released, `old` is the most recently used now: `new` goes.
    await held.release();
    assert.deepEqual(await evictCaches(dir, 5000), [cacheName('new')]);
    assert.deepEqual(await apps(), [cacheName('old')]);
  });

  it("a dead builder's lock does not hold a cache", async () => {
    await filled('orphan', 4000, 100);
    const dead = spawn('true');
    await new Promise((resolve) => dead.on('exit', resolve));
    await writeFile(join(dir, 'apps', cacheName('orphan'), 'locks', 'crashed-build'), `${dead.pid}\n`);
    assert.deepEqual(await evictCaches(dir, 0), [cacheName('orphan')]);
  });
});
