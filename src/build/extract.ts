/**
 * Unpacks a source tarball (gzip'd tar, as GitHub's tarball endpoint serves it) into a directory, treating every
 * entry as hostile: no absolute path, no `..`, nothing written through a symbolic link, no link that leads out of the
 * directory, no devices, and limits on total size and entry count. A tar reader of its own (ustar, pax and GNU long
 * names), so what ships needs no archive library.
 */
import { createGunzip } from 'node:zlib';
import { Readable } from 'node:stream';
import { lstat, mkdir, readdir, realpath, symlink, writeFile } from 'node:fs/promises';
import { dirname, join, posix, sep } from 'node:path';

export interface ExtractLimits {
  /** Leading path components dropped (GitHub's tarball puts everything under `owner-repo-sha/`). */
  strip: number;
  maxBytes: number;
  maxEntries: number;
}

export const DEFAULT_LIMITS: ExtractLimits = { strip: 1, maxBytes: 1 << 30, maxEntries: 100_000 };

/** A refusal of the archive's content; the caller reports it as an invalid source. */
export class UnsafeArchive extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnsafeArchive';
  }
}

/** Reads exactly `n` bytes at a time from a stream of chunks. */
class ChunkReader {
  readonly #it: AsyncIterator<Buffer>;
  #buf: Buffer = Buffer.alloc(0);
  constructor(source: AsyncIterable<Buffer>) {
    this.#it = source[Symbol.asyncIterator]();
  }
  async read(n: number): Promise<Buffer | undefined> {
    const parts: Buffer[] = [this.#buf];
    let have = this.#buf.length;
    while (have < n) {
      const next = await this.#it.next();
      if (next.done) return undefined;
      parts.push(next.value);
      have += next.value.length;
    }
    const all = parts.length === 1 ? parts[0]! : Buffer.concat(parts, have);
    this.#buf = all.subarray(n);
    return all.subarray(0, n);
  }
}

function field(block: Buffer, start: number, length: number): string {
  const raw = block.subarray(start, start + length);
  const end = raw.indexOf(0);
  return raw.subarray(0, end === -1 ? length : end).toString('utf8');
}

function numeric(block: Buffer, start: number, length: number): number {
  const raw = block.subarray(start, start + length);
  if (raw[0]! & 0x80) {
    // base-256 (GNU) for big values
    let value = 0;
    for (let i = 1; i < length; i++) value = value * 256 + raw[i]!;
    return value;
  }
  const text = field(block, start, length).trim();
  return text ? parseInt(text, 8) : 0;
}

function paxRecords(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let pos = 0;
  while (pos < data.length) {
    const space = data.indexOf(0x20, pos);
    if (space === -1) break;
    const len = parseInt(data.subarray(pos, space).toString(), 10);
    if (!Number.isFinite(len) || len <= 0) break;
    const record = data.subarray(space + 1, pos + len - 1).toString('utf8');
    const eq = record.indexOf('=');
    if (eq > 0) out[record.slice(0, eq)] = record.slice(eq + 1);
    pos += len;
  }
  return out;
}

/** The entry's path relative to the root after stripping, or undefined when nothing is left of it. */
export function safeRelative(name: string, strip: number): string | undefined {
  if (name.includes('\0')) throw new UnsafeArchive(`entry name with a NUL byte`);
  if (name.startsWith('/')) throw new UnsafeArchive(`absolute path in the archive: ${name}`);
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw new UnsafeArchive(`path with ".." in the archive: ${name}`);
  const kept = parts.slice(strip);
  return kept.length ? kept.join('/') : undefined;
}

/** Whether a symbolic link at `path` (relative) pointing to `target` stays inside the root, read lexically. */
export function linkStaysInside(path: string, target: string): boolean {
  if (!target || target.startsWith('/') || target.includes('\0')) return false;
  const resolved = posix.normalize(posix.join(posix.dirname(path), target));
  return resolved !== '..' && !resolved.startsWith('../');
}

/** Refuses a write below a symbolic link: a later entry may not use an earlier link to write elsewhere. */
async function assertNoLinkOnPath(root: string, rel: string): Promise<void> {
  const parts = rel.split('/');
  let at = root;
  for (const part of parts.slice(0, -1)) {
    at = join(at, part);
    const st = await lstat(at).catch(() => undefined);
    if (!st) return;
    if (st.isSymbolicLink()) throw new UnsafeArchive(`entry written through a symbolic link: ${rel}`);
  }
  const last = await lstat(join(root, rel)).catch(() => undefined);
  if (last?.isSymbolicLink()) throw new UnsafeArchive(`entry replaces a symbolic link: ${rel}`);
}

/** Extracts a gzip'd tar from `body` into `dest` (which exists). Returns the pax global comment (GitHub: the sha). */
export async function extractTarGz(
  body: AsyncIterable<Uint8Array> | Readable,
  dest: string,
  limits: ExtractLimits = DEFAULT_LIMITS,
): Promise<{ comment?: string; entries: number; bytes: number }> {
  const gunzip = createGunzip();
  const input = body instanceof Readable ? body : Readable.from(body);
  input.on('error', (e) => gunzip.destroy(e));
  input.pipe(gunzip);
  const reader = new ChunkReader(gunzip as AsyncIterable<Buffer>);
  let entries = 0;
  let bytes = 0;
  let comment: string | undefined;
  let longName: string | undefined;
  let longLink: string | undefined;
  let pax: Record<string, string> = {};
  const links: { rel: string; target: string }[] = [];
  try {
    for (;;) {
      const block = await reader.read(512);
      if (!block) throw new UnsafeArchive('the archive ends early');
      if (block.every((b) => b === 0)) break;
      const size = numeric(block, 124, 12);
      const type = String.fromCharCode(block[156]!);
      if (++entries > limits.maxEntries) throw new UnsafeArchive(`more than ${limits.maxEntries} entries`);
      if (size < 0 || bytes + size > limits.maxBytes) {
        throw new UnsafeArchive(`more than ${limits.maxBytes} bytes unpacked`);
      }
      bytes += size;
      const padded = Math.ceil(size / 512) * 512;
      const data = padded ? await reader.read(padded) : Buffer.alloc(0);
      if (!data) throw new UnsafeArchive('the archive ends early');
      const content = data.subarray(0, size);
      if (type === 'g') {
        comment = paxRecords(content).comment ?? comment;
        continue;
      }
      if (type === 'x') {
        pax = paxRecords(content);
        continue;
      }
      if (type === 'L' || type === 'K') {
        const text = content.toString('utf8').replace(/\0+$/, '');
        if (type === 'L') longName = text;
        else longLink = text;
        continue;
      }
      const magic = field(block, 257, 6);
      const prefix = magic.startsWith('ustar') ? field(block, 345, 155) : '';
      const name = pax.path ?? longName ?? (prefix ? `${prefix}/${field(block, 0, 100)}` : field(block, 0, 100));
      const linkName = pax.linkpath ?? longLink ?? field(block, 157, 100);
      const mode = numeric(block, 100, 8);
      pax = {};
      longName = longLink = undefined;
      const rel = safeRelative(name, limits.strip);
      if (rel === undefined) continue;
      const path = join(dest, rel);
      switch (type) {
        case '0':
        case '\0':
        case '7':
          await mkdir(dirname(path), { recursive: true });
          await assertNoLinkOnPath(dest, rel);
          // Executable bits kept; no setuid/setgid/sticky, no write for others.
          await writeFile(path, content, { mode: mode & 0o111 ? 0o755 : 0o644, flag: 'w' });
          break;
        case '5':
          await assertNoLinkOnPath(dest, rel);
          await mkdir(path, { recursive: true, mode: 0o755 });
          break;
        case '2':
          if (!linkStaysInside(rel, linkName)) {
            throw new UnsafeArchive(`symbolic link ${rel} -> ${linkName} leads out of the source`);
          }
          await mkdir(dirname(path), { recursive: true });
          await assertNoLinkOnPath(dest, rel);
          await symlink(linkName, path);
          links.push({ rel, target: linkName });
          break;
        case '1':
          throw new UnsafeArchive(`hard link in the archive: ${rel}`);
        default:
          // Devices, FIFOs and the like have no place in a source tree: skipped.
          break;
      }
    }
  } finally {
    gunzip.destroy();
    input.destroy();
  }
  // Links that only look inside (a link through another link, e.g. `a -> .` then `b -> a/../x`): resolve for real.
  const root = await realpath(dest);
  for (const { rel } of links) {
    const real = await realpath(join(dest, rel)).catch(() => undefined);
    if (real !== undefined && real !== root && !real.startsWith(root + sep)) {
      throw new UnsafeArchive(`symbolic link ${rel} leads out of the source`);
    }
  }
  return { comment, entries, bytes };
}

/** Total bytes of the regular files under `dir` (links not followed). */
export async function directorySize(dir: string): Promise<number> {
  let total = 0;
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory()) total += await directorySize(p);
    else if (e.isFile()) total += (await lstat(p).catch(() => ({ size: 0 }))).size;
  }
  return total;
}
