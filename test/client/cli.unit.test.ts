/**
 * The `flui` CLI without any server: help, usage errors, configuration and connection errors, output formatting and
 * progress. The command against a Temporal dev server is in cli.test.ts; deploys that run, in cli-e2e.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Build, StartedDeploy } from '../../src/client/index.ts';
import { EXIT, exitCodeOf } from '../../src/cli/exit.ts';
import { commandHelp, HELP } from '../../src/cli/help.ts';
import { main } from '../../src/cli/main.ts';
import { formatBuilds, formatStatus, table } from '../../src/cli/output.ts';
import { Progress } from '../../src/cli/progress.ts';
import { freePort } from '../../dev/process.ts';
import type { DeployStatus } from '../../src/workflows/contract.ts';
import { flui } from './flui.ts';

function capture(isTTY = false) {
  const out: string[] = [];
  const err: string[] = [];
  return {
    io: { out: (t: string) => void out.push(t), err: (t: string) => void err.push(t), isTTY },
    out: () => out.join(''),
    err: () => err.join(''),
  };
}

const COMMANDS = ['deploy', 'status', 'cancel', 'retry', 'builds', 'logs', 'images', 'rollback'] as const;

function sampleStatus(over: Partial<DeployStatus> = {}): DeployStatus {
  return {
    deployId: 'shop.web.mbx1abcd12ef34',
    kind: 'Application',
    namespace: 'shop',
    app: 'web',
    phase: 'building',
    attempt: 1,
    timings: [{ phase: 'preparing', startedAt: '2026-01-01T00:00:00.000Z', endedAt: '2026-01-01T00:00:01.500Z' }],
    queued: [],
    ...over,
  };
}

describe('flui without a server', () => {
  it('documents every command and the exit codes in --help, and each command in its own --help', async () => {
    const c = capture();
    assert.equal(await main(['--help'], c.io, {}), EXIT.ok);
    assert.equal(c.out(), `${HELP}\n`);
    for (const name of COMMANDS) assert.match(c.out(), new RegExp(`flui ${name} <`));
    for (const code of [0, 1, 2, 3, 4]) assert.match(c.out(), new RegExp(`^  ${code}  `, 'm'));
    for (const name of COMMANDS) {
      const h = capture();
      assert.equal(await main([name, '--help'], h.io, {}), EXIT.ok);
      assert.equal(h.out(), commandHelp(name));
      assert.match(h.out(), new RegExp(`^flui ${name} `));
      assert.match(h.out(), /--json/);
      assert.equal(h.err(), '');
    }
    const follow = capture();
    await main(['help', 'deploy'], follow.io, {});
    assert.match(follow.out(), /--follow/);
    assert.match(follow.out(), /--policy P/);
    const bad = capture();
    assert.equal(await main(['help', 'destroy'], bad.io, {}), EXIT.usage);
    assert.match(bad.err(), /unknown command "destroy"/);
  });

  it('refuses bad usage with exit 2, a reason and where to read more, before reading configuration', async () => {
    // TEMPORAL_ADDRESS is invalid: reaching configuration would exit 4, so 2 proves the check came first.
    const env = { TEMPORAL_ADDRESS: 'not an address' };
    const cases: [string[], RegExp][] = [
      [[], /Usage:/],
      [['destroy', 'x'], /unknown command "destroy"/],
      [['status'], /missing <app>/],
      [['status', 'Web_App'], /"Web_App" is not an app name/],
      [['status', 'web', 'extra'], /unexpected argument "extra"/],
      [['status', 'web', '--follow'], /--follow does not apply to status/],
      [['deploy', 'm.yaml', '--policy', 'yolo'], /--policy must be supersede or queue/],
      [['builds', 'web', '--limit', '0'], /--limit must be a whole number/],
      [['logs', 'web', '--build', '1.5'], /--build must be a whole number/],
      [['rollback', 'web', '--to', 'sha256:abc'], /--to must be a digest/],
      [['cancel', 'web', '--reason', ' '], /--reason must be/],
      [['status', 'web', '-n', 'Bad'], /"Bad" is not a namespace name/],
      [['status', 'web', '--colour'], /Unknown option '--colour'/],
    ];
    for (const [argv, message] of cases) {
      const c = capture();
      assert.equal(await main(argv, c.io, env), EXIT.usage, argv.join(' '));
      assert.match(c.err(), message, argv.join(' '));
      if (argv.length) assert.match(c.err(), /--help/);
      assert.equal(c.out(), '', 'nothing on stdout');
    }
  });

  it('exits 4 naming the variable when the configuration is invalid', async () => {
    const c = capture();
    assert.equal(await main(['status', 'web'], c.io, { TEMPORAL_ADDRESS: 'no-port' }), EXIT.unavailable);
    assert.match(c.err(), /TEMPORAL_ADDRESS must be host:port, e\.g\. 127\.0\.0\.1:7233, not "no-port"/);
  });

  it('exits 4 and says how to start Temporal when it cannot be reached', async () => {
    const port = await freePort();
    const run = await flui(['status', 'web', '--json'], {
      TEMPORAL_ADDRESS: `127.0.0.1:${port}`,
      TEMPORAL_CONNECT_TIMEOUT_MS: '300',
    });
    assert.equal(run.code, EXIT.unavailable, run.transcript);
    assert.match(run.stderr, new RegExp(`cannot reach Temporal at 127\\.0\\.0\\.1:${port}.*set TEMPORAL_ADDRESS`));
    assert.equal(run.stdout, '');
  });

  it('exits 4 when the cluster for `images` cannot be read', async () => {
    const c = capture();
    const code = await main(['images', 'web'], c.io, { KUBECONFIG: '/nonexistent/kubeconfig' });
    assert.equal(code, EXIT.unavailable);
    assert.match(c.err(), /cannot read the image history of default\/web .*Check KUBECONFIG/);
  });

  it('formats tables, statuses and builds for people', () => {
    assert.equal(
      table([
        ['A', 'BB', 'C'],
        ['xxx', 'y', 'last column is not padded'],
      ]),
      'A    BB  C\nxxx  y   last column is not padded\n',
    );
    const waiting = formatStatus(
      sampleStatus({ phase: 'awaiting-retry', failedPhase: 'building', error: 'CI run 7 concluded "failure"' }),
    );
    assert.match(waiting, /^phase: {4}awaiting-retry \(failed while building\)$/m);
    assert.match(waiting, /^ {2}preparing {6}1\.5s$/m);
    assert.match(waiting, /flui retry web -n shop$/m);
    // What preparing did to the pipeline, in the backend's words; said once per fact.
    const gitlab = formatStatus(
      sampleStatus({
        pipeline: {
          path: '.flui/shop.web.gitlab-ci.yml',
          changed: true,
          commit: 'c'.repeat(40),
          changes: ['created .flui/shop.web.gitlab-ci.yml', 'added an include to .gitlab-ci.yml'],
        },
      }),
    );
    assert.match(
      gitlab,
      /^pipeline: \.flui\/shop\.web\.gitlab-ci\.yml: created \.flui\/shop\.web\.gitlab-ci\.yml; added an include to \.gitlab-ci\.yml$/m,
    );
    const current = formatStatus(sampleStatus({ pipeline: { path: '.github/workflows/flui.yml', changed: false } }));
    assert.match(current, /^pipeline: \.github\/workflows\/flui\.yml: already current, nothing written$/m);
    const updated = formatStatus(
      sampleStatus({ pipeline: { path: '.github/workflows/flui.yml', changed: true, commit: 'd'.repeat(40) } }),
    );
    assert.match(updated, /^pipeline: \.github\/workflows\/flui\.yml: updated in d{12}$/m);
    assert.doesNotMatch(formatStatus(sampleStatus({ pipeline: { path: '', changed: false } })), /pipeline:/);
    const cancelled = formatStatus(sampleStatus({ phase: 'cancelled', cancelled: { by: 'temporal' } }));
    assert.equal(cancelled.match(/^cancelled /gm)?.length, 1, cancelled);
    const build: Build = {
      deployId: 'default.web.mbx1abcd12ef34',
      runId: 'r1',
      kind: 'Application',
      phase: 'succeeded',
      commit: 'a'.repeat(40),
      ciRun: { id: '7', htmlUrl: 'https://github.example/acme/web/actions/runs/7' },
      digest: `sha256:${'b'.repeat(64)}`,
      startedAt: '2026-01-01T00:00:00.000Z',
      durationSeconds: 12.5,
    };
    const lines = formatBuilds([
      build,
      { ...build, deployId: 'default.web.mbx2', phase: 'building', durationSeconds: undefined },
    ]).split('\n');
    assert.match(lines[0]!, /^DEPLOY +KIND +OUTCOME +COMMIT +DIGEST +STARTED +DURATION +CI RUN$/);
    assert.match(lines[1]!, /succeeded +a{12} +sha256:b{12}… +2026-01-01 00:00:00Z +12\.5s +https:\/\/github/);
    assert.match(lines[2]!, /building .* running +https:/);
  });

  it('maps how a deploy ended to its exit code', () => {
    assert.equal(exitCodeOf('succeeded'), 0);
    assert.equal(exitCodeOf('failed'), 1);
    assert.equal(exitCodeOf('awaiting-retry'), 1);
    assert.equal(exitCodeOf('cancelled'), 3);
    assert.equal(exitCodeOf('superseded'), 3);
  });

  it('shows progress as lines with elapsed time, a spinner only on a terminal, JSON events with --json', () => {
    const started: StartedDeploy = { deployId: 'default.web.mbx1abcd12ef34', workflowId: 'w', runId: 'r' };
    const building = sampleStatus({ ciRun: { id: '7', htmlUrl: 'https://ci/7' } });
    const done = sampleStatus({ phase: 'succeeded', digest: `sha256:${'c'.repeat(64)}`, image: 'reg/web@sha256:c' });

    let now = 1000;
    const plain = capture(false);
    const p = new Progress(plain.io, false, () => now);
    p.started(started, 'deploy of default/web');
    now = 3500;
    p.update(building);
    p.tick();
    now = 9000;
    p.update(done);
    assert.equal(p.finish(), EXIT.ok);
    assert.equal(
      plain.out(),
      'deploy of default/web default.web.mbx1abcd12ef34 started\n' +
        '   2.5s  building       CI run https://ci/7\n' +
        `   8.0s  succeeded      sha256:${'c'.repeat(64)}\n` +
        'deployed reg/web@sha256:c in 8.0s\n',
    );

    const tty = capture(true);
    const t = new Progress(tty.io, false, () => now);
    t.update(building);
    t.tick();
    t.tick();
    t.update(done);
    t.finish();
    assert.ok(tty.out().includes('\r\x1b[2K⠙ building · 0.0s'), JSON.stringify(tty.out()));
    assert.ok(tty.out().endsWith('succeeded      sha256:' + 'c'.repeat(64) + '\ndeployed reg/web@sha256:c in 0.0s\n'));

    const j = capture(true);
    const q = new Progress(j.io, true, () => now);
    q.started(started, 'deploy');
    q.update(building);
    q.tick();
    q.update(sampleStatus({ phase: 'superseded', supersededBy: 'default.web.newer' }));
    assert.equal(q.finish(), EXIT.cancelled);
    const lines = j
      .out()
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(
      lines.map((l) => l.event),
      ['started', 'status', 'status', 'finished'],
    );
    assert.equal(lines[0]!.deployId, started.deployId);
    assert.deepEqual(lines[3], { event: 'finished', phase: 'superseded', exitCode: 3 });
    assert.equal(j.err(), '', 'with --json the outcome is in the events');
  });
});
