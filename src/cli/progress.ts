/** Live progress of a followed deploy, and following one until it ends. */
import type { Client } from '@temporalio/client';
import { follow, type AppStatus, type FollowOptions, type StartedDeploy } from '../client/index.ts';
import { isSettled, type DeployStatus } from '../workflows/contract.ts';
import { EXIT, exitCodeOf } from './exit.ts';
import type { Io } from './io.ts';
import { nsFlag, print } from './output.ts';

const SPINNER = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/**
 * One line per phase change (elapsed time, CI run link, digest), plus, on a terminal only, a spinner line that is
 * redrawn in place. With --json: one JSON event per line, nothing else.
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
    return !this.current || isSettled(this.current.phase);
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

/** Follows a deploy until it ends, drawing `progress`; returns the exit code. Ctrl-C stops watching, not the deploy. */
export async function followDeploy(
  client: Client,
  deployId: string,
  progress: Progress,
  opts: FollowOptions = {},
): Promise<number> {
  const interrupted = () => {
    progress.interrupted(deployId);
    process.exit(EXIT.interrupted);
  };
  process.once('SIGINT', interrupted);
  try {
    for await (const s of follow(client, deployId, opts)) progress.update(s);
    return progress.finish();
  } finally {
    process.off('SIGINT', interrupted);
  }
}

/**
 * What `deploy` and `rollback` do once Temporal took the request: follow it to its end (`--follow`), or say that it
 * started and how to look at it. `what` names it: "deploy", "rollback".
 */
export async function reportStarted(
  o: { io: Io; json: boolean; follow: boolean },
  client: Client,
  started: StartedDeploy,
  what: string,
  target: { namespace: string; app: string },
): Promise<number> {
  if (o.follow) {
    const progress = new Progress(o.io, o.json);
    progress.started(started, `${what} of ${target.namespace}/${target.app}`);
    return followDeploy(client, started.deployId, progress);
  }
  print(o.io, o.json, started, () => {
    const lines = [`${what} ${started.deployId} started for ${target.namespace}/${target.app}`];
    if (started.webUiUrl) lines.push(`Web UI: ${started.webUiUrl}`);
    lines.push(`Follow it: flui status ${target.app}${nsFlag(target.namespace)}`);
    return lines.join('\n') + '\n';
  });
  return EXIT.ok;
}
