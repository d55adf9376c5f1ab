/**
 * `flui`: deploys and their history from the terminal, kubectl/gh style. Every command takes --json (stable keys,
 * nothing else on stdout); errors go to stderr and say what to do next; exit codes say how it went (see HELP).
 */
import { parseArgs } from 'node:util';
import type { Client } from '@temporalio/client';
import { ConfigError, loadConfig, type Config } from '../config.ts';
import { loadManifest, ManifestError } from '../manifest/parse.ts';
import { describeCancellation, TERMINAL_PHASES, type DeployStatus } from '../workflows/contract.ts';
import * as flui from './index.ts';
import { EXIT, FluiError, type AppStatus, type Build, type ImageListing, type StartedDeploy } from './index.ts';

export { EXIT } from './index.ts';

export interface Io {
  out(text: string): void;
  err(text: string): void;
  /** stdout is a terminal: live progress lines are drawn only then. */
  isTTY: boolean;
}

const defaultIo: Io = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
  isTTY: Boolean(process.stdout.isTTY),
};

// ---- Commands and their help ---------------------------------------------------------------------------------

type OptionName = 'follow' | 'policy' | 'namespace' | 'reason' | 'limit' | 'build' | 'to';

interface CommandSpec {
  args: string;
  options: OptionName[];
  summary: string;
  details: string;
  examples: string[];
}

const COMMANDS: Record<string, CommandSpec> = {
  deploy: {
    args: '<manifest.yaml>',
    options: ['follow', 'policy', 'namespace'],
    summary: 'start a deploy of the app a manifest describes',
    details:
      "Validates the manifest (an invalid one starts nothing) and asks the app's deploy workflow for a deploy. If a\n" +
      'deploy of the app is in flight, the new one supersedes it (default) or queues behind it (--policy queue).\n' +
      'With --json and --follow, stdout carries one JSON object per line: {"event":"started",…}, then\n' +
      '{"event":"status",…} per change, then {"event":"finished","phase":…,"exitCode":…}.',
    examples: ['flui deploy flui.yaml --follow', 'flui deploy flui.yaml --policy queue --json'],
  },
  status: {
    args: '<app>',
    options: ['namespace'],
    summary: 'phase, CI run, digest and timings of the current or last deploy',
    details:
      'Asks the running deploy for its status; when no worker answers within 5 s, shows the state the deploy\n' +
      'recorded at its last phase change (and says so on stderr).',
    examples: ['flui status hello', 'flui status hello -n shop --json'],
  },
  cancel: {
    args: '<app>',
    options: ['namespace', 'reason'],
    summary: 'stop the deploy in flight: its CI run is cancelled, nothing is rolled out',
    details:
      'Without --reason the deploy ends Cancelled (through Temporal cancellation); with one it fails with that\n' +
      'reason. Either way the CI run is cancelled and nothing is rolled out.',
    examples: ['flui cancel hello', 'flui cancel hello --reason "wrong branch"'],
  },
  retry: {
    args: '<app>',
    options: ['namespace', 'follow'],
    summary: 're-run a failed deploy from the phase that failed',
    details:
      'A deploy whose build or rollout failed waits (retryWindowMinutes in the manifest) for a retry; this re-runs\n' +
      'it from the failed phase in the same workflow, keeping its history.',
    examples: ['flui retry hello --follow'],
  },
  builds: {
    args: '<app>',
    options: ['namespace', 'limit'],
    summary: 'past deploys, newest first: commit, CI run, outcome, start, duration',
    details: "Read from Temporal's visibility store (each deploy's recorded state), without replaying histories.",
    examples: ['flui builds hello --limit 5'],
  },
  logs: {
    args: '<app>',
    options: ['namespace', 'build'],
    summary: "where the logs of a build are: its CI run's page",
    details:
      "Logs, reruns and artifacts stay the CI's; --build N picks the N-th newest deploy that ran CI (1 = newest).",
    examples: ['flui logs hello', 'flui logs hello --build 2 --json'],
  },
  images: {
    args: '<app>',
    options: ['namespace'],
    summary: 'digests rolled out for the app, newest first, the running one marked *',
    details: 'Read from the cluster (KUBECONFIG): the history the rollouts record beside the app.',
    examples: ['flui images hello'],
  },
  rollback: {
    args: '<app>',
    options: ['namespace', 'to', 'follow'],
    summary: 'roll back to an earlier image, through the deploy workflow',
    details:
      'Rolls the app back to --to <digest> (see `flui images`), or to the image before the current one. It is a\n' +
      'deploy like any other: it supersedes one in flight and shows in Temporal Web UI.',
    examples: ['flui rollback hello', 'flui rollback hello --to sha256:… --follow'],
  },
};

const OPTION_HELP: Record<OptionName, string> = {
  follow: '-f, --follow             show each phase until the deploy ends; exit code says how it ended',
  policy: "    --policy P           supersede (default: the manifest's deploy.policy) or queue",
  namespace: '-n, --namespace NS       Kubernetes namespace of the app (default: the manifest\'s, or "default")',
  reason: '    --reason TEXT        why; the deploy fails with this reason',
  limit: '    --limit N            at most N deploys (default 20, up to 1000)',
  build: '    --build N            the N-th newest build with a CI run (default 1)',
  to: '    --to sha256:…        digest to roll back to (default: the image before the current one)',
};

const OPTION_SYNOPSIS: Record<OptionName, string> = {
  follow: '[--follow]',
  policy: '[--policy supersede|queue]',
  namespace: '',
  reason: '[--reason TEXT]',
  limit: '[--limit N]',
  build: '[--build N]',
  to: '[--to sha256:…]',
};

function synopsis(name: string): string {
  const c = COMMANDS[name]!;
  return ['flui', name, c.args, ...c.options.map((o) => OPTION_SYNOPSIS[o])].filter(Boolean).join(' ');
}

const EXIT_HELP = `Exit codes:
  0  success
  1  the deploy failed, or there is nothing to act on (no such deploy, nothing to cancel or retry)
  2  bad usage or an invalid manifest: nothing was started
  3  the deploy was cancelled, or superseded by a newer deploy of the app
  4  Temporal or the cluster cannot be reached, or the configuration is invalid
  130  interrupted (Ctrl-C) while following: the deploy itself goes on`;

const CONFIG_HELP = `Configuration (environment):
  TEMPORAL_ADDRESS      Temporal frontend host:port (default 127.0.0.1:7233, the one \`npm start\` runs)
  TEMPORAL_NAMESPACE    Temporal namespace (default "default")
  TEMPORAL_TLS_CERT, TEMPORAL_TLS_KEY, TEMPORAL_API_KEY   a TLS cluster or Temporal Cloud
  TEMPORAL_UI_URL       Web UI to link deploys to (default: the local dev server's, or Temporal Cloud's)
  FLUI_TASK_QUEUE       task queue of the Flui workers (default flui-deploy)
  KUBECONFIG            the cluster \`flui images\` reads (default ~/.kube/config)`;

export const HELP = `flui — deploy applications with Flui's build pipeline

Usage:
${Object.entries(COMMANDS)
  .map(([name, c]) => `  ${synopsis(name)}\n      ${c.summary}`)
  .join('\n')}

Options (every command):
      --json               machine-readable output on stdout (stable keys, nothing else)
  -n, --namespace NS       Kubernetes namespace of the app (default: the manifest's, or "default")
  -h, --help               help; \`flui <command> --help\` for a command's options

${EXIT_HELP}

${CONFIG_HELP}`;

export function commandHelp(name: string): string {
  const c = COMMANDS[name]!;
  const options = [...c.options.map((o) => OPTION_HELP[o]), '    --json               machine-readable output'];
  return `${synopsis(name)} [-n NS] [--json]

${c.summary[0]!.toUpperCase()}${c.summary.slice(1)}.

${c.details}

Options:
${options.map((o) => `  ${o}`).join('\n')}

Examples:
${c.examples.map((e) => `  ${e}`).join('\n')}

${EXIT_HELP}
`;
}

// ---- Output formatting ---------------------------------------------------------------------------------------

/** Columns padded to their widest cell; the last column is not padded. */
export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return (
    rows
      .map((r) =>
        r
          .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!)))
          .join('  ')
          .trimEnd(),
      )
      .join('\n') + '\n'
  );
}

const shortDigest = (digest?: string) => (digest ? `${digest.slice(0, 19)}…` : '-');
const shortSha = (sha?: string) => (sha ? sha.slice(0, 12) : '-');
/** `2026-05-01 12:00:00Z`: sortable, second precision. */
const when = (iso: string) => `${iso.slice(0, 19).replace('T', ' ')}Z`;
const nsFlag = (namespace: string) => (namespace === 'default' ? '' : ` -n ${namespace}`);

export function formatStatus(s: DeployStatus): string {
  const lines = [
    `app:      ${s.namespace}/${s.app}`,
    `deploy:   ${s.deployId} (${s.kind}${s.attempt > 1 ? `, attempt ${s.attempt}` : ''})`,
    `phase:    ${s.phase}${s.failedPhase && s.phase !== 'succeeded' ? ` (failed while ${s.failedPhase})` : ''}`,
  ];
  if (s.cancelled) lines.push(`cancelled ${describeCancellation(s.cancelled)}`);
  if (s.commit) lines.push(`commit:   ${s.commit}`);
  if (s.ciRun) lines.push(`CI run:   ${s.ciRun.htmlUrl}`);
  if (s.image) lines.push(`image:    ${s.image}`);
  if (s.rolledBackTo) lines.push(`rolled back to: ${s.rolledBackTo}`);
  if (s.rolloutUndone === 'removed') lines.push('undone:   the cancelled first rollout; the app was removed');
  if (s.rolloutUndone === 'kept')
    lines.push('undone:   nothing: no earlier image is known good, the Deployment is as left');
  if (s.error) lines.push(`error:    ${s.error}`);
  if (s.queued.length) lines.push(`queued:   ${s.queued.join(', ')}`);
  if (s.supersededBy) lines.push(`superseded by: ${s.supersededBy}`);
  if (s.timings.length) lines.push('timings:');
  for (const t of s.timings) {
    const secs = t.endedAt ? `${((Date.parse(t.endedAt) - Date.parse(t.startedAt)) / 1000).toFixed(1)}s` : 'running';
    lines.push(`  ${t.phase.padEnd(14)} ${secs}`);
  }
  if (s.phase === 'awaiting-retry') lines.push(`Fix the cause, then: flui retry ${s.app}${nsFlag(s.namespace)}`);
  return lines.join('\n') + '\n';
}

export function formatBuilds(builds: Build[]): string {
  return table([
    ['DEPLOY', 'KIND', 'OUTCOME', 'COMMIT', 'DIGEST', 'STARTED', 'DURATION', 'CI RUN'],
    ...builds.map((b) => [
      b.deployId,
      b.kind,
      b.cancelled ? `${b.phase} ${describeCancellation(b.cancelled)}` : b.phase,
      shortSha(b.commit),
      shortDigest(b.digest),
      when(b.startedAt),
      b.durationSeconds !== undefined ? `${b.durationSeconds}s` : 'running',
      b.ciRun?.htmlUrl ?? '-',
    ]),
  ]);
}

export function formatImages(images: ImageListing[]): string {
  return table([
    ['', 'DIGEST', 'DEPLOY', 'COMMIT', 'ROLLED OUT', 'OUTCOME'],
    ...images.map((i) => [
      i.current ? '*' : '',
      i.digest,
      i.deployId,
      shortSha(i.commit),
      when(i.rolledOutAt),
      i.outcome + (i.reason ? ` (${i.reason})` : ''),
    ]),
  ]);
}

/** How a followed deploy's last status maps to an exit code. */
export function exitCodeOf(phase: DeployStatus['phase']): number {
  if (phase === 'succeeded') return EXIT.ok;
  if (phase === 'cancelled' || phase === 'superseded') return EXIT.cancelled;
  return EXIT.failed;
}

const SPINNER = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/**
 * Live progress of a followed deploy: one line per phase change (elapsed time, CI run link, digest), plus, on a
 * terminal only, a spinner line that is redrawn in place. With --json: one JSON event per line, nothing else.
 */
export class Progress {
  private readonly t0: number;
  private current?: DeployStatus;
  private frame = 0;
  private drawn = false;
  private warned = false;
  private timer?: ReturnType<typeof setInterval>;

  constructor(
    private readonly io: Io,
    private readonly json: boolean,
    private readonly now: () => number = Date.now,
  ) {
    this.t0 = now();
  }

  private elapsed(): string {
    return `${((this.now() - this.t0) / 1000).toFixed(1)}s`;
  }

  private clear(): void {
    if (this.drawn) this.io.out('\r\x1b[2K');
    this.drawn = false;
  }

  started(d: StartedDeploy, what: string): void {
    if (this.json) return this.io.out(`${JSON.stringify({ event: 'started', ...d })}\n`);
    this.io.out(`${what} ${d.deployId} started${d.webUiUrl ? `\nWeb UI: ${d.webUiUrl}` : ''}\n`);
  }

  update(s: DeployStatus): void {
    this.current = s;
    if ((s as Partial<AppStatus>).source === 'recorded' && !this.ended() && !this.warned) {
      this.warned = true;
      this.clear();
      this.io.err(
        'no worker answered within 5 s: showing recorded state; is a Flui worker running (npm run worker)?\n',
      );
    }
    if (this.json) {
      this.io.out(`${JSON.stringify({ event: 'status', elapsedSeconds: (this.now() - this.t0) / 1000, status: s })}\n`);
      return;
    }
    const extra = [s.ciRun ? `CI run ${s.ciRun.htmlUrl}` : '', s.digest ?? '', s.error ?? ''].filter(Boolean);
    this.clear();
    this.io.out(`${this.elapsed().padStart(7)}  ${s.phase.padEnd(14)} ${extra.join(' · ')}`.trimEnd() + '\n');
    if (this.io.isTTY && !this.timer && !this.ended()) {
      this.timer = setInterval(() => this.tick(), 100);
      this.timer.unref();
    }
  }

  /** Watching stopped (Ctrl-C); the deploy goes on. */
  interrupted(deployId: string): void {
    if (this.timer) clearInterval(this.timer);
    this.clear();
    const s = this.current;
    const again = s ? `: flui status ${s.app}${nsFlag(s.namespace)}` : '';
    this.io.err(`stopped following ${deployId}; the deploy goes on${again}\n`);
  }

  private ended(): boolean {
    return !this.current || TERMINAL_PHASES.includes(this.current.phase) || this.current.phase === 'awaiting-retry';
  }

  /** Redraws the spinner line (terminal only). */
  tick(): void {
    if (this.json || !this.io.isTTY || this.ended()) return;
    this.clear();
    this.io.out(`${SPINNER[this.frame++ % SPINNER.length]} ${this.current!.phase} · ${this.elapsed()}`);
    this.drawn = true;
  }

  /** Stops the spinner and reports the end; returns the exit code. */
  finish(): number {
    if (this.timer) clearInterval(this.timer);
    this.clear();
    const s = this.current;
    const code = s ? exitCodeOf(s.phase) : EXIT.failed;
    if (this.json) {
      this.io.out(`${JSON.stringify({ event: 'finished', phase: s?.phase ?? null, exitCode: code })}\n`);
      return code;
    }
    if (!s) return code;
    const again = `${s.app}${nsFlag(s.namespace)}`;
    if (s.phase === 'succeeded') this.io.out(`deployed ${s.image ?? s.digest ?? ''} in ${this.elapsed()}\n`);
    else if (s.phase === 'awaiting-retry')
      this.io.err(`deploy failed: ${s.error}\nIt waits for a retry: fix the cause, then run \`flui retry ${again}\`\n`);
    else if (s.phase === 'failed')
      this.io.err(`deploy failed: ${s.error ?? 'see its history in Web UI'}\nSee \`flui logs ${again}\`\n`);
    else if (s.phase === 'superseded')
      this.io.err(`deploy superseded${s.supersededBy ? ` by ${s.supersededBy}` : ''}: see \`flui status ${again}\`\n`);
    else this.io.err(`deploy ${s.phase}${s.error ? `: ${s.error}` : ''}\n`);
    return code;
  }
}

async function followDeploy(
  client: Client,
  deployId: string,
  progress: Progress,
  opts: flui.FollowOptions = {},
): Promise<number> {
  // Ctrl-C stops watching, not the deploy: say so, and how to look again.
  const interrupted = () => {
    progress.interrupted(deployId);
    process.exit(130);
  };
  process.once('SIGINT', interrupted);
  try {
    for await (const s of flui.follow(client, deployId, opts)) progress.update(s);
    return progress.finish();
  } finally {
    process.off('SIGINT', interrupted);
  }
}

// ---- Main ----------------------------------------------------------------------------------------------------

export async function main(argv: string[], io: Io = defaultIo, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        json: { type: 'boolean' },
        follow: { type: 'boolean', short: 'f' },
        policy: { type: 'string' },
        namespace: { type: 'string', short: 'n' },
        reason: { type: 'string' },
        limit: { type: 'string' },
        build: { type: 'string' },
        to: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    io.err(`flui: ${(err as Error).message}\nRun \`flui --help\` for usage.\n`);
    return EXIT.usage;
  }
  const { values: o, positionals } = parsed;
  const [command, target, ...rest] = positionals;
  if (command === 'help') {
    if (target && !COMMANDS[target]) {
      io.err(`flui help: unknown command "${target}" (one of ${Object.keys(COMMANDS).join(', ')})\n`);
      return EXIT.usage;
    }
    io.out(target ? commandHelp(target) : `${HELP}\n`);
    return EXIT.ok;
  }
  if (!command) {
    (o.help ? io.out : io.err)(`${HELP}\n`);
    return o.help ? EXIT.ok : EXIT.usage;
  }
  const spec = COMMANDS[command];
  const usage = (message: string) => {
    io.err(`flui ${command}: ${message}\nRun \`flui ${spec ? `${command} ` : ''}--help\` for usage.\n`);
    return EXIT.usage;
  };
  if (!spec) return usage(`unknown command "${command}" (one of ${Object.keys(COMMANDS).join(', ')})`);
  if (o.help) {
    io.out(commandHelp(command));
    return EXIT.ok;
  }
  // Options each command understands; anything else is a mistake worth pointing out.
  const stray = Object.keys(o).find((k) => k !== 'json' && !spec.options.includes(k as OptionName));
  if (stray) return usage(`--${stray} does not apply to ${command}`);
  if (!target) return usage(`missing ${spec.args}`);
  if (rest.length) return usage(`unexpected argument "${rest[0]}"`);
  if (o.policy !== undefined && !['supersede', 'queue'].includes(o.policy))
    return usage(`--policy must be supersede or queue, not "${o.policy}"`);
  const limit = o.limit === undefined ? 20 : Number(o.limit);
  if (!/^[0-9]+$/.test(o.limit ?? '20') || limit < 1 || limit > 1000)
    return usage('--limit must be a whole number from 1 to 1000');
  const buildIndex = o.build === undefined ? 1 : Number(o.build);
  if (!/^[0-9]+$/.test(o.build ?? '1') || buildIndex < 1 || buildIndex > 1000)
    return usage('--build must be a whole number from 1 (the newest) to 1000');
  const label = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
  if (command !== 'deploy' && !label.test(target))
    return usage(`"${target}" is not an app name (lowercase letters, digits and "-")`);
  if (o.namespace !== undefined && !label.test(o.namespace)) return usage(`"${o.namespace}" is not a namespace name`);
  if (o.to !== undefined && !/^sha256:[a-f0-9]{64}$/.test(o.to))
    return usage('--to must be a digest, "sha256:" followed by 64 hex digits (see `flui images`)');
  if (o.reason !== undefined && (o.reason.trim() === '' || o.reason.length > 500))
    return usage('--reason must be 1 to 500 characters');

  let config: Config;
  try {
    config = loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) {
      io.err(`flui: ${err.message}\nFix the variable named above (see \`flui --help\`).\n`);
      return EXIT.unavailable;
    }
    throw err;
  }
  const json = Boolean(o.json);
  const print = (value: unknown, human: () => string) => io.out(json ? `${JSON.stringify(value, null, 2)}\n` : human());
  const webUi = flui.webUiBase(config.temporal);
  const startOptions = { taskQueue: config.temporal.taskQueue, requestedBy: env.USER || undefined, webUi };

  let client: Client | undefined;
  try {
    if (command === 'deploy') {
      const manifest = await loadManifest(target);
      const { namespace, name: app } = manifest.metadata;
      if (o.namespace && o.namespace !== namespace)
        return usage(`--namespace ${o.namespace} differs from the manifest's metadata.namespace (${namespace})`);
      client = await flui.connect(config);
      const started = await flui.startDeploy(client, manifest, { ...startOptions, policy: o.policy as 'queue' });
      if (o.follow) {
        const progress = new Progress(io, json);
        progress.started(started, `deploy of ${namespace}/${app}`);
        return await followDeploy(client, started.deployId, progress);
      }
      print(started, () => {
        const lines = [`deploy ${started.deployId} started for ${namespace}/${app}`];
        if (started.webUiUrl) lines.push(`Web UI: ${started.webUiUrl}`);
        lines.push(`Follow it: flui status ${app}${nsFlag(namespace)}`);
        return lines.join('\n') + '\n';
      });
      return EXIT.ok;
    }

    const namespace = o.namespace ?? 'default';
    if (command === 'images') {
      const images = await flui.listImages(config.kubeconfig, namespace, target);
      print(images, () =>
        images.length ? formatImages(images) : `no images rolled out for ${namespace}/${target} yet\n`,
      );
      return EXIT.ok;
    }

    client = await flui.connect(config);
    switch (command) {
      case 'status': {
        const s: AppStatus = await flui.status(client, namespace, target);
        if (s.source === 'recorded' && !TERMINAL_PHASES.includes(s.phase)) {
          io.err(
            `flui status: no worker answered; this is the state recorded at the deploy's last phase change. Is a Flui worker running (npm run worker) on task queue ${config.temporal.taskQueue}?\n`,
          );
        }
        print(s, () => formatStatus(s));
        return EXIT.ok;
      }
      case 'cancel': {
        const s = await flui.cancel(client, namespace, target, o.reason);
        print(
          { action: 'cancel', deployId: s.deployId, namespace, app: target, phase: s.phase },
          () => `cancel requested for deploy ${s.deployId} (was ${s.phase})\n`,
        );
        return EXIT.ok;
      }
      case 'retry': {
        const s = await flui.retry(client, namespace, target);
        if (o.follow) {
          const progress = new Progress(io, json);
          if (!json) io.out(`retrying deploy ${s.deployId} from ${s.failedPhase ?? 'the failed phase'}\n`);
          return await followDeploy(client, s.deployId, progress, { fromAttempt: s.attempt + 1 });
        }
        print(
          {
            action: 'retry',
            deployId: s.deployId,
            namespace,
            app: target,
            failedPhase: s.failedPhase ?? null,
            attempt: s.attempt + 1,
          },
          () => `retrying deploy ${s.deployId} from ${s.failedPhase ?? 'the failed phase'}\n`,
        );
        return EXIT.ok;
      }
      case 'builds': {
        const builds = await flui.listBuilds(client, namespace, target, limit);
        print(builds, () => (builds.length ? formatBuilds(builds) : `no deploys of ${namespace}/${target} yet\n`));
        return EXIT.ok;
      }
      case 'logs': {
        const l = await flui.logs(client, namespace, target, buildIndex);
        print(l, () => `CI run of deploy ${l.deployId} (${l.phase}, commit ${shortSha(l.commit)}):\n${l.logsUrl}\n`);
        return EXIT.ok;
      }
      case 'rollback': {
        const started = await flui.rollback(client, namespace, target, { ...startOptions, digest: o.to });
        if (o.follow) {
          const progress = new Progress(io, json);
          progress.started(started, `rollback of ${namespace}/${target}`);
          return await followDeploy(client, started.deployId, progress);
        }
        print(started, () => {
          const lines = [`rollback ${started.deployId} started for ${namespace}/${target}`];
          if (started.webUiUrl) lines.push(`Web UI: ${started.webUiUrl}`);
          lines.push(`Follow it: flui status ${target}${nsFlag(namespace)}`);
          return lines.join('\n') + '\n';
        });
        return EXIT.ok;
      }
    }
    return EXIT.usage;
  } catch (err) {
    if (err instanceof ManifestError) {
      io.err(`${err.message}\nNothing was deployed. Fix the fields above and run the command again.\n`);
      return EXIT.usage;
    }
    if (err instanceof FluiError) {
      io.err(`flui ${command}: ${err.message}\n`);
      return err.exitCode;
    }
    io.err(`flui ${command}: ${(err as Error).message}\n`);
    return EXIT.failed;
  } finally {
    await client?.connection.close().catch(() => undefined);
  }
}
