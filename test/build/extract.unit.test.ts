/** Safe unpacking of source tarballs: every way out of the directory is refused, limits hold, good trees unpack. */
import assert from 'node:assert/strict';
import { lstat, mkdtemp, readFile, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { pack } from 'tar-stream';
import { tarball } from '../../packages/github-emulator/src/routes-archives.ts';
import { extractTarGz, linkStaysInside, safeRelative, UnsafeArchive } from '../../src/build/extract.ts';

interface Entry {
  name: string;
  type?: 'file' | 'directory' | 'symlink' | 'link';
  linkname?: string;
  content?: string;
}

async function tarGz(entries: Entry[]): Promise<Readable> {
  const archive = pack();
  const chunks: Buffer[] = [];
  archive.on('data', (c: unknown) => chunks.push(c as Buffer));
  const done = new Promise((resolve) => archive.on('end', () => resolve(undefined)));
  for (const { content, ...header } of entries) archive.entry(header, content ?? '');
  archive.finalize();
  await done;
  return Readable.from([gzipSync(Buffer.concat(chunks))]);
}

describe('extractTarGz', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'flui-extract-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it("unpacks GitHub's layout (emulator's tarball): top directory stripped, pax comment read", async () => {
    const sha = 'a'.repeat(40);
    const data = tarball('acme-web-aaaaaaa', sha, {
      Dockerfile: Buffer.from('FROM busybox\n'),
      'deep/er/file.txt': Buffer.from('x'),
    });
    const res = await extractTarGz(Readable.from([data]), dir);
    assert.equal(res.comment, sha);
    assert.equal(await readFile(join(dir, 'Dockerfile'), 'utf8'), 'FROM busybox\n');
    assert.equal(await readFile(join(dir, 'deep/er/file.txt'), 'utf8'), 'x');
  });

  it('keeps links that stay inside', async () => {
    await extractTarGz(
      await tarGz([
        { name: 'top/a/file', content: 'hi' },
        { name: 'top/b', type: 'symlink', linkname: 'a/file' },
      ]),
      dir,
    );
    assert.equal(await readlink(join(dir, 'b')), 'a/file');
  });

  const refusals: [string, Entry[]][] = [
    ['an absolute path', [{ name: '/etc/evil', content: 'x' }]],
    ['a ".." path', [{ name: 'top/../../evil', content: 'x' }]],
    ['an absolute link', [{ name: 'top/l', type: 'symlink', linkname: '/etc' }]],
    ['a link up and out', [{ name: 'top/l', type: 'symlink', linkname: '../../etc' }]],
    [
      'a write through a link',
      [
        { name: 'top/d', type: 'directory' },
        { name: 'top/l', type: 'symlink', linkname: 'd' },
        { name: 'top/l/file', content: 'x' },
      ],
    ],
    [
      'a link out through another link',
      [
        { name: 'top/a', type: 'symlink', linkname: '.' },
        { name: 'top/b', type: 'symlink', linkname: 'a/../../../../../../etc' },
      ],
    ],
    [
      'a hard link',
      [
        { name: 'top/f', content: 'x' },
        { name: 'top/h', type: 'link', linkname: 'top/f' },
      ],
    ],
  ];
  for (const [what, entries] of refusals) {
    it(`refuses ${what}`, async () => {
      await assert.rejects(extractTarGz(await tarGz(entries), dir), UnsafeArchive);
      assert.equal(await lstat(join(tmpdir(), 'evil')).catch(() => undefined), undefined);
    });
  }

  it('refuses archives over the size or entry limits', async () => {
    const big = await tarGz([{ name: 'top/big', content: 'x'.repeat(4096) }]);
    await assert.rejects(extractTarGz(big, dir, { strip: 1, maxBytes: 1000, maxEntries: 10 }), /bytes/);
    const many = await tarGz(Array.from({ length: 20 }, (_, i) => ({ name: `top/f${i}`, content: '' })));
    await assert.rejects(extractTarGz(many, dir, { strip: 1, maxBytes: 1 << 20, maxEntries: 10 }), /entries/);
  });

  it('refuses a truncated archive', async () => {
    const whole = (await tarGz([{ name: 'top/f', content: 'x'.repeat(2000) }])).read() as Buffer;
    const { gunzipSync } = await import('node:zlib');
    const cut = gzipSync(gunzipSync(whole).subarray(0, 700));
    await assert.rejects(extractTarGz(Readable.from([cut]), dir), /ends early/);
  });
});

describe('path rules', () => {
  it('safeRelative strips and refuses', () => {
    assert.equal(safeRelative('top/a/b', 1), 'a/b');
    assert.equal(safeRelative('top/', 1), undefined);
    assert.throws(() => safeRelative('/x', 0), UnsafeArchive);
    assert.throws(() => safeRelative('a/../../x', 0), UnsafeArchive);
  });
  it('linkStaysInside reads targets relative to the link', () => {
    assert.equal(linkStaysInside('a/b/l', '../c'), true);
    assert.equal(linkStaysInside('a/l', '../../c'), false);
    assert.equal(linkStaysInside('l', '/etc'), false);
  });
});
