/**
 * Repository archives, as the source of a self-hosted build: `GET /repos/{owner}/{repo}/tarball/{ref}` answers 302 to
 * a short-lived, unguessable URL (GitHub sends one on codeload.github.com) that serves the gzip'd tar of the commit:
 * one top directory `owner-repo-<short sha>/`, a pax global header whose `comment` is the full commit sha, regular
 * files, as `git archive` (which GitHub runs) writes them. Links live five minutes, like the log links.
 */
import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { gzipSync } from 'node:zlib';
import type { Emulation } from './context.ts';
import { error } from './http.ts';
import type { Repo } from './store.ts';

const LINK_TTL_MS = 300_000;
export const ARCHIVE_PATH = '/_emulator/archives/';

interface Link {
  repo: Repo;
  sha: string;
  expires: number;
}

/** A 512-byte ustar header (name split over `prefix` when longer than 100 bytes). */
function header(name: string, size: number, type: string, mode: number): Buffer {
  const block = Buffer.alloc(512);
  let prefix = '';
  let base = name;
  if (Buffer.byteLength(name) > 100) {
    const cut = name.lastIndexOf('/', 155);
    if (cut <= 0 || Buffer.byteLength(name.slice(cut + 1)) > 100) throw new Error(`path too long for ustar: ${name}`);
    prefix = name.slice(0, cut);
    base = name.slice(cut + 1);
  }
  block.write(base, 0, 100, 'utf8');
  block.write(mode.toString(8).padStart(7, '0'), 100, 8);
  block.write('0000000', 108, 8);
  block.write('0000000', 116, 8);
  block.write(size.toString(8).padStart(11, '0'), 124, 12);
  block.write('00000000000', 136, 12);
  block.fill(' ', 148, 156);
  block.write(type, 156, 1);
  block.write('ustar\u000000', 257, 8, 'binary');
  block.write('root', 265, 32);
  block.write('root', 297, 32);
  block.write(prefix, 345, 155, 'utf8');
  let sum = 0;
  for (const b of block) sum += b;
  block.write(`${sum.toString(8).padStart(6, '0')}\u0000 `, 148, 8, 'binary');
  return block;
}

const pad = (data: Buffer) => Buffer.concat([data, Buffer.alloc((512 - (data.length % 512)) % 512)]);

/** The commit's files as `git archive --format=tar.gz --prefix=<top>/` would write them. */
export function tarball(top: string, sha: string, files: Record<string, Buffer>): Buffer {
  const parts: Buffer[] = [];
  const record = `comment=${sha}\n`;
  const line = (n: number) => `${n} ${record}`;
  let len = Buffer.byteLength(line(0));
  while (Buffer.byteLength(line(len)) !== len) len = Buffer.byteLength(line(len));
  const pax = Buffer.from(line(len));
  parts.push(header('pax_global_header', pax.length, 'g', 0o666), pad(pax));
  parts.push(header(`${top}/`, 0, '5', 0o775));
  const dirs = new Set<string>();
  for (const path of Object.keys(files).sort()) {
    const segments = path.split('/');
    for (let i = 1; i < segments.length; i++) {
      const dir = segments.slice(0, i).join('/');
      if (dirs.has(dir)) continue;
      dirs.add(dir);
      parts.push(header(`${top}/${dir}/`, 0, '5', 0o775));
    }
    const data = files[path]!;
    parts.push(header(`${top}/${path}`, data.length, '0', 0o664), pad(data));
  }
  parts.push(Buffer.alloc(1024));
  return gzipSync(Buffer.concat(parts));
}

export function registerArchiveRoutes(env: Emulation): { serve(path: string, res: ServerResponse): boolean } {
  const { store, router } = env;
  const links = new Map<string, Link>();

  router.add(
    'GET',
    '/repos/{owner}/{repo}/tarball/{ref}',
    ({ repo, params }) => {
      const r = repo!;
      const sha = store.resolve(r, params.ref!);
      if (!sha) return error(404, 'Not Found');
      const t = Date.now();
      for (const [k, v] of links) if (v.expires < t) links.delete(k);
      const id = randomBytes(12).toString('hex');
      links.set(id, { repo: r, sha, expires: t + LINK_TTL_MS });
      return { status: 302, headers: { location: `${env.api()}${ARCHIVE_PATH}${id}.tar.gz` } };
    },
    { permission: { area: 'contents', level: 'read' } },
  );

  return {
    /** Serves an archive link; false when `path` is not one. */
    serve(path, res) {
      const m = /^\/_emulator\/archives\/([a-f0-9]+)\.tar\.gz$/.exec(path);
      if (!m) return false;
      const link = links.get(m[1]!);
      if (!link || link.expires < Date.now()) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('Not Found (archive links expire after five minutes)');
        return true;
      }
      const { repo, sha } = link;
      const data = tarball(`${repo.owner}-${repo.name}-${sha.slice(0, 7)}`, sha, store.files(repo, sha));
      res
        .writeHead(200, {
          'content-type': 'application/x-gzip',
          'content-length': String(data.length),
          'content-disposition': `attachment; filename=${repo.owner}-${repo.name}-${sha.slice(0, 7)}.tar.gz`,
        })
        .end(data);
      return true;
    },
  };
}
