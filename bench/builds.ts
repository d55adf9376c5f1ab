/**
 * Self-hosted builds with the build engine (src/build): real buildah as root of a fresh user namespace, the real
 * registry (dev/registry.ts), a real git server (dev/git-server.ts), base images seeded offline (dev/base-images.ts).
 * Measures, in one process:
 * - `examples/hello` cold (an empty layer cache: the naive approach, a fresh builder per build as a CI job gets) and
 *   cached (the app's cache kept on the builder), with the ratio;
 * - builds per minute one builder sustains: small Dockerfiles with a RUN step, each commit different, one after the
 *   other, with and without the cache.
 * Prints the numbers and rewrites its own section of BENCHMARKS.md (between the builds markers). Not a test.
 *
 *   npm run bench:builds     (FLUI_BENCH_BUILD_ROUNDS: cold/cached pairs, default 3; FLUI_BENCH_BUILDS: builds per
 *                             sequential series, default 8)
 */
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { buildBaseImage } from '../dev/base-images.ts';
import { startGitServer } from '../dev/git-server.ts';
import { startRegistry } from '../dev/registry.ts';
import {
  defaultUserNamespace,
  importBaseImage,
  runBuild,
  type BuilderSettings,
  type BuildSpec,
} from '../src/build/index.ts';

const ROUNDS = Number(process.env.FLUI_BENCH_BUILD_ROUNDS ?? 3);
const SERIES = Number(process.env.FLUI_BENCH_BUILDS ?? 8);
const START = '<!-- builds:start (npm run bench:builds rewrites this section) -->';
const END = '<!-- builds:end -->';
const EXAMPLE = join(import.meta.dirname, '..', 'examples', 'hello', 'repo');

const lines: string[] = [];
const say = (line = '') => {
  lines.push(line);
  process.stdout.write(`${line}\n`);
};
const progress = (line: string) => process.stderr.write(`[bench:builds] ${line}\n`);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

async function main(): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), 'flui-bench-builds-'));
  await chmod(root, 0o711);
  const registry = await startRegistry();
  const git = await startGitServer();
  try {
    const settings = (cacheDir: string): BuilderSettings => ({
      workDir: join(root, 'work'),
      cacheDir: join(root, cacheDir),
      cacheBudgetBytes: 20 * 2 ** 30,
      network: 'none',
      baseRegistry: registry.host,
      registryAuths: {},
      insecureHosts: [registry.host],
      userNamespace: defaultUserNamespace(),
    });
    progress('seeding node:20 and busybox from this machine');
    const seedStart = performance.now();
    for (const [kind, tag] of [
      ['node', '20'],
      ['busybox', 'latest'],
    ] as const) {
      await buildBaseImage(kind, join(root, kind));
      await importBaseImage(join(root, kind), `${registry.host}/library/${kind}:${tag}`, settings('seed'));
    }
    const seedMs = performance.now() - seedStart;
    const commit = await git.commit('flui-examples/hello.git', {}, { dir: EXAMPLE });
    const hello = (id: string, app: string): BuildSpec => ({
      buildId: id,
      app,
      source: { kind: 'git', url: git.repoUrl('flui-examples/hello.git'), commit },
      context: '.',
      dockerfile: 'Dockerfile',
      buildArgs: {},
      image: `${registry.host}/flui-examples/hello`,
      tags: [`flui-${id}`, commit],
      timeoutMs: 300_000,
    });

    const cold: number[] = [];
    const cached: number[] = [];
    let cachedSteps = 0;
    for (let i = 0; i < ROUNDS; i++) {
      // Cold: a cache directory of its own, as a fresh CI runner has (and what a builder without a cache would do).
      const c = await runBuild(hello(`cold-${i}`, 'default.hello'), settings(`cache-cold-${i}`), {});
      cold.push(c.durationMs);
      const w = await runBuild(hello(`warm-${i}`, 'default.hello'), settings(`cache-cold-${i}`), {});
      cached.push(w.durationMs);
      cachedSteps = w.cachedSteps;
      progress(`round ${i + 1}: cold ${s(c.durationMs)}, cached ${s(w.durationMs)}`);
      await rm(join(root, `cache-cold-${i}`), { recursive: true, force: true });
    }

    const series = async (label: string, cacheDirOf: (i: number) => string): Promise<number> => {
      const t0 = performance.now();
      for (let i = 0; i < SERIES; i++) {
        const sha = await git.commit('acme/small.git', {
          Dockerfile: 'FROM busybox\nRUN echo building > /built\nCOPY . /src\n',
          'version.txt': `${label} ${i}\n`,
        });
        await runBuild(
          {
            buildId: `${label}-${i}`,
            app: 'acme.small',
            source: { kind: 'git', url: git.repoUrl('acme/small.git'), commit: sha },
            context: '.',
            dockerfile: 'Dockerfile',
            buildArgs: {},
            image: `${registry.host}/acme/small`,
            tags: [sha],
            timeoutMs: 300_000,
          },
          settings(cacheDirOf(i)),
          {},
        );
      }
      const elapsed = performance.now() - t0;
      progress(`${label}: ${SERIES} builds in ${s(elapsed)}`);
      return (SERIES * 60_000) / elapsed;
    };
    const perMinuteCached = await series('cached', () => 'cache-series');
    const perMinuteCold = await series('cold', (i) => `cache-series-cold-${i}`);

    say(START);
    say('## Self-hosted builds (build engine, real buildah)');
    say();
    say(
      `Run ${new Date().toISOString()} on ${cpus().length} × ${cpus()[0]?.model.split(' ').slice(0, 2).join(' ')}, ` +
        `${Math.round(totalmem() / 2 ** 30)} GiB, buildah 1.28 (vfs storage, chroot isolation), as root of a fresh user ` +
        `namespace: ${defaultUserNamespace()}. Reproduce: \`npm run bench:builds\` (FLUI_BENCH_BUILD_ROUNDS=${ROUNDS}, ` +
        `FLUI_BENCH_BUILDS=${SERIES}). Source from a local git server, push to the local registry, RUN steps without ` +
        'network. Each build is the whole engine: checkout, pull of the base, `bud --layers`, two tags pushed.',
    );
    say();
    say('| examples/hello (FROM node:20 seeded offline) | median | runs |');
    say('| --- | --- | --- |');
    say(
      `| cold: empty layer cache (naive: a fresh builder per build) | ${s(median(cold))} | ${cold.map(s).join(', ')} |`,
    );
    say(`| cached: the app's layer cache on the builder | ${s(median(cached))} | ${cached.map(s).join(', ')} |`);
    say(`| ratio cold / cached | ${(median(cold) / median(cached)).toFixed(1)}× | ${cachedSteps} cached steps |`);
    say();
    say('| one builder, builds one after the other (small Dockerfile, new commit each) | builds per minute |');
    say('| --- | --- |');
    say(`| with the app's layer cache | ${perMinuteCached.toFixed(1)} |`);
    say(`| without (naive: fresh cache per build) | ${perMinuteCold.toFixed(1)} |`);
    say(`| ratio | ${(perMinuteCached / perMinuteCold).toFixed(1)}× |`);
    say();
    say(`Seeding node:20 (host node binary + its libraries + busybox) and busybox offline: ${s(seedMs)}.`);
    say(END);

    const file = join(import.meta.dirname, '..', 'BENCHMARKS.md');
    const old = await readFile(file, 'utf8').catch(() => '');
    const section = lines.join('\n');
    const next =
      old.includes(START) && old.includes(END)
        ? old.slice(0, old.indexOf(START)) + section + old.slice(old.indexOf(END) + END.length)
        : `${old.trimEnd()}\n\n${section}\n`;
    await writeFile(file, next);
  } finally {
    await git.stop();
    await registry.stop();
    await rm(root, { recursive: true, force: true });
  }
}

await main();
