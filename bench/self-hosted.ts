/**
 * Self-hosted builds (FLUI_CI=self-hosted) against the GitHub path, on this machine, with real parts only: prints
 * numbers, asserts nothing. `npm run bench:self-hosted` (FLUI_BENCH_SH_DEPLOYS, FLUI_BENCH_SH_BURST tune the counts).
 *
 * - Overhead of the build phase, same app (a `FROM scratch` image), steady state: the deploy's `building` phase minus
 *   the build itself. GitHub path: the emulator's runner pushes the image with no simulated build time, so the phase
 *   is all orchestration (dispatch, run status, webhook). Self-hosted: the phase minus the build engine's own
 *   duration (source fetch, buildah, push), so what is left is starting the build workflow, scheduling its activity
 *   on a builder, the log signals and the report back to the deploy. Whole deploys' wall time beside it.
 * - Builds per minute one builder sustains: a burst of deploys of distinct apps (one builder, one build at a time),
 *   from the first start to the last completion, through the whole path (source from the git server, buildah, push,
 *   rollout).
 */
import { performance } from 'node:perf_hooks';
import { cpus, totalmem } from 'node:os';
import { startDeploy } from '../src/client/index.ts';
import { buildWorkflowId, type BuildOutcome } from '../src/workflows/build-contract.ts';
import type { DeployOutcome } from '../src/workflows/contract.ts';
import { startLocalStack, type LocalStack } from '../dev/stack.ts';
import { createApplication } from '../test/helpers/stack.ts';
import { workflowBundle } from '../test/helpers/temporal.ts';

const DEPLOYS = Number(process.env.FLUI_BENCH_SH_DEPLOYS ?? 6);
const BURST = Number(process.env.FLUI_BENCH_SH_BURST ?? 10);
const FILES = { Dockerfile: 'FROM scratch\nCOPY server.js /\n', 'server.js': 'console.log("hello")\n' };

const say = (line = '') => process.stdout.write(`${line}\n`);
const ms = (from: string, to?: string) => (to ? Date.parse(to) - Date.parse(from) : NaN);
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s[Math.floor((s.length - 1) / 2)]! + s[Math.ceil((s.length - 1) / 2)]!) / 2 : NaN;
};

async function deployOnce(s: LocalStack, app: Awaited<ReturnType<typeof createApplication>>) {
  const t0 = performance.now();
  const started = await startDeploy(s.client, app, { taskQueue: s.config.temporal.taskQueue });
  const outcome = (await s.client.workflow.getHandle(started.workflowId).result()) as DeployOutcome;
  const wall = performance.now() - t0;
  if (outcome.phase !== 'succeeded') throw new Error(`deploy ${started.deployId} ${outcome.phase}`);
  const building = outcome.timings.find((t) => t.phase === 'building')!;
  return { started, outcome, wall, buildingMs: ms(building.startedAt, building.endedAt) };
}

async function steadyState(ci: 'github' | 'self-hosted', bundle: Awaited<ReturnType<typeof workflowBundle>>) {
  const s = await startLocalStack({
    ci,
    buildSource: 'git',
    runner: { queuedMs: 0, buildMs: 0 },
    workflowBundle: bundle,
  });
  try {
    const app = await createApplication(s, { files: FILES, deploy: { retryWindowMinutes: 0 } });
    await deployOnce(s, app); // first deploy: cold caches everywhere
    const rows: { wall: number; building: number; overhead: number; build: number }[] = [];
    for (let i = 0; i < DEPLOYS; i++) {
      const d = await deployOnce(s, app);
      let build = 0;
      if (ci === 'self-hosted') {
        const b = (await s.client.workflow.getHandle(buildWorkflowId(d.started.deployId)).result()) as BuildOutcome;
        build = b.durationMs ?? 0;
      }
      rows.push({ wall: d.wall, building: d.buildingMs, overhead: d.buildingMs - build, build });
    }
    return rows;
  } finally {
    await s.stop();
  }
}

async function burst(bundle: Awaited<ReturnType<typeof workflowBundle>>) {
  const s = await startLocalStack({ ci: 'self-hosted', buildSource: 'git', workflowBundle: bundle });
  try {
    const apps = await Promise.all(
      Array.from({ length: BURST }, (_, i) =>
        createApplication(s, {
          files: { ...FILES, 'server.js': `console.log("hello ${i}")\n` },
          deploy: { retryWindowMinutes: 0 },
        }),
      ),
    );
    const t0 = performance.now();
    const outcomes = await Promise.all(
      apps.map(async (app) => {
        const started = await startDeploy(s.client, app, { taskQueue: s.config.temporal.taskQueue });
        return (await s.client.workflow.getHandle(started.workflowId).result()) as DeployOutcome;
      }),
    );
    const seconds = (performance.now() - t0) / 1000;
    const ok = outcomes.filter((o) => o.phase === 'succeeded').length;
    return { seconds, ok };
  } finally {
    await s.stop();
  }
}

async function main() {
  const bundle = await workflowBundle('src/workflows/index.ts');
  say(
    `# Self-hosted builds: ${new Date().toISOString()}, ${cpus().length} × ${cpus()[0]?.model.split(' ').slice(0, 2).join(' ')}, ` +
      `${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`,
  );
  const gh = await steadyState('github', bundle);
  const sh = await steadyState('self-hosted', bundle);
  const f = (x: number) => `${Math.round(x)} ms`;
  say(`steady-state deploys of one app, ${DEPLOYS} each (medians):`);
  say(
    `  GitHub path (emulated CI, 0 ms build): deploy ${f(median(gh.map((r) => r.wall)))}, building phase ${f(median(gh.map((r) => r.building)))} (all orchestration)`,
  );
  say(
    `  self-hosted: deploy ${f(median(sh.map((r) => r.wall)))}, building phase ${f(median(sh.map((r) => r.building)))}, ` +
      `of which the build itself ${f(median(sh.map((r) => r.build)))}, orchestration ${f(median(sh.map((r) => r.overhead)))}`,
  );
  say(
    `  orchestration of the build phase, self-hosted / GitHub: ${(median(sh.map((r) => r.overhead)) / median(gh.map((r) => r.building))).toFixed(2)}`,
  );
  const b = await burst(bundle);
  say(
    `burst: ${b.ok}/${BURST} deploys of distinct apps through one builder (one build at a time) in ${b.seconds.toFixed(1)} s: ` +
      `${((b.ok / b.seconds) * 60).toFixed(1)} builds (and deploys) per minute`,
  );
  process.exit(0);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${(err as Error).stack}\n`);
  process.exit(1);
});
