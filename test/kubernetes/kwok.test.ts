/**
 * The kwok cluster launcher itself (dev/kwok.ts): two clusters at once, the marked image that never becomes
 * Ready, no leftovers after stop or after a killed owner, and clear errors for missing binaries.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { removeOrphanedClusters, startKwokCluster, type KwokCluster } from '../../dev/kwok.ts';

/** Pids of the control plane processes kwokctl started (it records them per component). */
function controlPlanePids(c: KwokCluster): number[] {
  const dir = join(c.workDir, 'clusters', c.name, 'pids');
  return readdirSync(dir).map((f) => Number(readFileSync(join(dir, f), 'utf8').trim()));
}

function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Listening TCP sockets (`tcp:ADDR:PORT` in /proc's hex notation) owned by the given pids. */
function listeningAddresses(pids: number[]): string[] {
  const inodes = new Set<string>();
  for (const pid of pids) {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      const link = (() => {
        try {
          return readlinkSync(`/proc/${pid}/fd/${fd}`);
        } catch {
          return '';
        }
      })();
      const m = /^socket:\[(\d+)\]$/.exec(link);
      if (m) inodes.add(m[1]!);
    }
  }
  const out: string[] = [];
  for (const table of ['tcp', 'tcp6']) {
    for (const line of readFileSync(`/proc/net/${table}`, 'utf8').trim().split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols[3] === '0A' && inodes.has(cols[9]!)) out.push(`${table}:${cols[1]}`);
    }
  }
  return out;
}

async function waitFor(check: () => boolean | Promise<boolean>, what: string, seconds = 30): Promise<void> {
  for (let i = 0; i < seconds * 4; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  assert.fail(`timed out waiting for ${what}`);
}

describe('kwok clusters', () => {
  it('starts two clusters at once on ports from the OS, and stop leaves nothing behind', async () => {
    const home = await mkdtemp(join(tmpdir(), 'flui-kwok-home-'));
    const realHome = process.env.HOME;
    process.env.HOME = home; // anything written under ~ would land here
    const progress: string[] = [];
    let clusters: KwokCluster[] = [];
    try {
      clusters = await Promise.all([
        startKwokCluster({ nodes: 1, log: (l) => progress.push(l) }),
        startKwokCluster({ nodes: 2, log: (l) => progress.push(l) }),
      ]);
      const [a, b] = clusters as [KwokCluster, KwokCluster];
      assert.notEqual(a.server, b.server);
      assert.match(a.server, /^https:\/\/127\.0\.0\.1:\d+$/);
      assert.equal((await a.kubectl('get', 'nodes', '-o', 'name')).trim().split('\n').length, 1);
      assert.equal((await b.kubectl('get', 'nodes', '-o', 'name')).trim().split('\n').length, 2);
      assert.ok(progress.some((l) => l.includes(`cluster ${a.name}: control plane ready at ${a.server}`)));

      // Every component listens on loopback only (0100007F is 127.0.0.1 in /proc/net/tcp).
      const pids = controlPlanePids(a);
      assert.equal(pids.length, 5);
      const open = listeningAddresses(pids);
      assert.ok(open.length > 0);
      const port = Number(new URL(a.server).port).toString(16).toUpperCase().padStart(4, '0');
      assert.ok(open.includes(`tcp:0100007F:${port}`), `apiserver on 127.0.0.1:${port}; saw ${open.join(' ')}`);
      assert.deepEqual(
        open.filter((x) => !x.startsWith('tcp:0100007F:') && !x.startsWith('tcp6:00000000000000000000000001000000:')),
        [],
      );

      await a.stop();
      await a.stop(); // twice is fine
      await waitFor(() => pids.every((p) => !running(p)), 'the control plane of the stopped cluster to exit');
      assert.equal(existsSync(a.workDir), false);
      assert.match(await b.kubectl('get', 'nodes'), /Ready/); // the other one is untouched
      await b.stop();
      assert.deepEqual(await readdir(home), []);
    } finally {
      process.env.HOME = realHome;
      await Promise.all(clusters.map((c) => c.stop()));
      await rm(home, { recursive: true, force: true });
    }
  });

  it('makes pods ready, except pods of images marked fail-', async () => {
    const c = await startKwokCluster({ nodes: 1 });
    try {
      await c.kubectl('run', 'good', '--image=127.0.0.1:5001/acme/web@sha256:' + '1'.repeat(64));
      await c.kubectl('run', 'bad', '--image=127.0.0.1:5001/acme/fail-web@sha256:' + '1'.repeat(64));
      await c.kubectl('wait', '--for=condition=Ready', 'pod/good', '--timeout=30s');
      await waitFor(
        async () => (await c.kubectl('get', 'pod/bad', '-o', 'jsonpath={.status.phase}')) === 'Running',
        'the marked pod to be Running',
      );
      const bad = JSON.parse(await c.kubectl('get', 'pod/bad', '-o', 'json')) as {
        status: { conditions: { type: string; status: string }[]; containerStatuses: { state: object }[] };
      };
      assert.equal(bad.status.conditions.find((x) => x.type === 'Ready')?.status, 'False');
      assert.deepEqual(Object.keys(bad.status.containerStatuses[0]?.state ?? {}), ['waiting']);
    } finally {
      await c.stop();
    }
  });

  it('has room for a Service per app beyond the API server default of 254 (the bench runs 1,000 apps)', async () => {
    const c = await startKwokCluster({ nodes: 1 });
    const dir = await mkdtemp(join(tmpdir(), 'flui-kwok-svc-'));
    try {
      const items = Array.from({ length: 300 }, (_, i) => ({
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: `app-${i}` },
        spec: { selector: { app: `app-${i}` }, ports: [{ port: 80 }] },
      }));
      const file = join(dir, 'services.json');
      await writeFile(file, JSON.stringify({ apiVersion: 'v1', kind: 'List', items }));
      await c.kubectl('create', '-f', file);
      const ips = (await c.kubectl('get', 'services', '-l', '!component', '-o', 'jsonpath={.items[*].spec.clusterIP}'))
        .trim()
        .split(' ')
        .filter((ip) => ip !== '10.96.0.1');
      assert.equal(ips.length, 300);
      assert.ok(
        ips.every((ip) => ip.startsWith('10.96.')),
        ips.join(' '),
      );
    } finally {
      await c.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('removes the cluster of a process that was killed before stopping it', async () => {
    // A child process starts a cluster and is killed with SIGKILL: its control plane keeps running (kwokctl
    // daemonizes it) until the next start, or removeOrphanedClusters, finds the owner gone.
    const script = `
      import { startKwokCluster } from ${JSON.stringify(new URL('../../dev/kwok.ts', import.meta.url).href)};
      const c = await startKwokCluster({ nodes: 1 });
      console.log(JSON.stringify({ name: c.name, workDir: c.workDir }));
      setInterval(() => {}, 1000);
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const line = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('\n')) resolve(out.trim());
      });
      child.once('exit', (code) => reject(new Error(`child exited with ${code} before starting its cluster`)));
    });
    const { name, workDir } = JSON.parse(line) as { name: string; workDir: string };
    const orphan = { name, workDir } as KwokCluster;
    const pids = controlPlanePids(orphan);
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    assert.ok(pids.every(running), 'the control plane outlives its owner');

    const removed = await removeOrphanedClusters();
    assert.ok(removed.includes(name), `removed ${removed.join(', ')}`);
    await waitFor(() => pids.every((p) => !running(p)), 'the orphaned control plane to exit');
    assert.equal(existsSync(workDir), false);
  });

  it('names the missing binary and how to build it', async () => {
    const saved = process.env.FLUI_KWOKCTL;
    process.env.FLUI_KWOKCTL = '/nonexistent/kwokctl';
    try {
      await assert.rejects(startKwokCluster(), /kwokctl not found .*FLUI_KWOKCTL=\/nonexistent\/kwokctl/);
    } finally {
      if (saved === undefined) delete process.env.FLUI_KWOKCTL;
      else process.env.FLUI_KWOKCTL = saved;
    }
  });
});
