/**
 * A local git server for tests and the sandbox: `git http-backend` (git's own smart-HTTP CGI) behind a small Node
 * HTTP server on 127.0.0.1 and a free port, serving bare repositories under one directory, optionally behind basic
 * auth. Repositories are written with real git (`commit` makes a commit on a branch from a set of files).
 */
import { execFile, spawn } from 'node:child_process';
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { freePort, makeTempDir } from './process.ts';

const run = promisify(execFile);

export interface GitServerOptions {
  /** Require these credentials (basic auth) for every request. */
  auth?: { username: string; password: string };
}

export interface GitServer {
  /** `http://127.0.0.1:PORT` */
  url: string;
  /** `127.0.0.1:PORT` */
  host: string;
  root: string;
  /** The clone URL of repository `name` (e.g. `acme/hello.git`). */
  repoUrl(name: string): string;
  /** Commits `files` (paths to contents; a directory to copy with `dir`) on `branch`, creating the repo; the sha. */
  commit(
    name: string,
    files: Record<string, string | Buffer>,
    opts?: { branch?: string; dir?: string; message?: string },
  ): Promise<string>;
  /** Requests seen, with their Authorization header (tests check where credentials went). */
  requests: { path: string; authorization?: string }[];
  stop(): Promise<void>;
}

const GIT_ENV = {
  GIT_AUTHOR_NAME: 'Flui Test',
  GIT_AUTHOR_EMAIL: 'test@flui.invalid',
  GIT_COMMITTER_NAME: 'Flui Test',
  GIT_COMMITTER_EMAIL: 'test@flui.invalid',
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_CONFIG_GLOBAL: '/dev/null',
};

export async function startGitServer(opts: GitServerOptions = {}): Promise<GitServer> {
  const root = await makeTempDir('git-server');
  const port = await freePort();
  const requests: GitServer['requests'] = [];
  const server: Server = createServer((req, res) => {
    requests.push({ path: req.url ?? '', authorization: req.headers.authorization });
    if (opts.auth) {
      const expected = `Basic ${Buffer.from(`${opts.auth.username}:${opts.auth.password}`).toString('base64')}`;
      if (req.headers.authorization !== expected) {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="flui-git"' }).end('unauthorized\n');
        return;
      }
    }
    serveCgi(root, req, res);
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const host = `127.0.0.1:${port}`;
  const url = `http://${host}`;
  return {
    url,
    host,
    root,
    requests,
    repoUrl: (name) => `${url}/${name}`,
    async commit(name, files, o = {}) {
      const bare = join(root, name);
      const branch = o.branch ?? 'main';
      await mkdir(bare, { recursive: true });
      const git = (...args: string[]) =>
        run('git', args, { cwd: bare, env: { ...process.env, ...GIT_ENV }, maxBuffer: 64 << 20 });
      await git('init', '--quiet', '--bare', `--initial-branch=${branch}`);
      const work = await mkdtemp(join(tmpdir(), 'flui-git-work-'));
      try {
        const wt = ['--git-dir', bare, '--work-tree', work];
        const exists = await git('rev-parse', '--verify', '--quiet', `refs/heads/${branch}`).then(
          () => true,
          () => false,
        );
        if (exists) await git(...wt, 'checkout', '--quiet', '-f', branch);
        else await git('symbolic-ref', 'HEAD', `refs/heads/${branch}`);
        if (o.dir) await cp(o.dir, work, { recursive: true });
        for (const [path, content] of Object.entries(files)) {
          await mkdir(dirname(join(work, path)), { recursive: true });
          await writeFile(join(work, path), content);
        }
        await git(...wt, 'add', '-A');
        await git(...wt, 'commit', '--quiet', '--allow-empty', '-m', o.message ?? 'commit');
        return (await git('rev-parse', `refs/heads/${branch}`)).stdout.trim();
      } finally {
        await rm(work, { recursive: true, force: true });
      }
    },
    stop: () =>
      new Promise<void>((resolve) => server.close(() => resolve())).then(() =>
        rm(root, { recursive: true, force: true }),
      ),
  };
}

/** One request through `git http-backend` (CGI): headers until the blank line, then the body. */
function serveCgi(root: string, req: IncomingMessage, res: ServerResponse): void {
  const u = new URL(req.url ?? '/', 'http://x');
  const child = spawn('git', ['http-backend'], {
    env: {
      PATH: process.env.PATH,
      GIT_PROJECT_ROOT: root,
      GIT_HTTP_EXPORT_ALL: '1',
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_CONFIG_GLOBAL: '/dev/null',
      PATH_INFO: decodeURIComponent(u.pathname),
      QUERY_STRING: u.search.slice(1),
      REQUEST_METHOD: req.method ?? 'GET',
      CONTENT_TYPE: req.headers['content-type'] ?? '',
      ...(req.headers['content-length'] ? { CONTENT_LENGTH: req.headers['content-length'] } : {}),
      ...(req.headers['content-encoding'] ? { HTTP_CONTENT_ENCODING: req.headers['content-encoding'] } : {}),
      ...(req.headers['git-protocol'] ? { GIT_PROTOCOL: String(req.headers['git-protocol']) } : {}),
      REMOTE_ADDR: '127.0.0.1',
    },
    stdio: ['pipe', 'pipe', 'ignore'],
  });
  req.pipe(child.stdin);
  let head = Buffer.alloc(0);
  let headersDone = false;
  child.stdout.on('data', (chunk: Buffer) => {
    if (headersDone) return void res.write(chunk);
    head = Buffer.concat([head, chunk]);
    const end = head.indexOf('\r\n\r\n');
    if (end === -1) return;
    headersDone = true;
    let status = 200;
    const headers: Record<string, string> = {};
    for (const line of head.subarray(0, end).toString().split('\r\n')) {
      const colon = line.indexOf(':');
      if (colon === -1) continue;
      const key = line.slice(0, colon).trim();
      const value = line.slice(colon + 1).trim();
      if (key.toLowerCase() === 'status') status = parseInt(value, 10);
      else headers[key] = value;
    }
    res.writeHead(status, headers);
    res.write(head.subarray(end + 4));
  });
  child.on('close', () => {
    if (!headersDone) res.writeHead(500).end();
    else res.end();
  });
  child.on('error', () => res.writeHead(500).end());
}
