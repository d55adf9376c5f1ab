/**
 * The `build` activity, run by `flui-builder` (src/builder.ts) on the build task queue: the engine (src/build/) builds
 * the job with buildah and pushes it, while this sends the output to the build workflow as batched signals and turns
 * a cancel (delivered through heartbeats, which the keep-alive interceptor sends) into an abort of the engine.
 *
 * Idempotency key: the job's tags, above all `ciImageTag(runKey)`, named after the deploy attempt. A repeat (a builder
 * died mid-build, or after the push and before reporting) builds the same commit again and pushes the same tags;
 * pushes are content-addressed, and the deploy resolves the attempt's own tag once the build reported, so exactly
 * one digest rolls out whatever line the builder died on.
 */
import { hostname } from 'node:os';
import { CancelledFailure, Context } from '@temporalio/activity';
import type { Config } from '../config.ts';
import type { BuilderSettings as BuildSettings } from '../build/index.ts';
import { ServiceError } from '../errors.ts';
import {
  buildLogSignal,
  MAX_LOG_BATCH_CHARS,
  type BuildActivityResult,
  type BuildJob,
  type BuildLogBatch,
} from '../workflows/build-contract.ts';
import type { BuildActivities } from './build-types.ts';
import { withActivityFailures } from './failures.ts';

/** The engine's entry point (src/build/index.ts `runBuild`), injected so tests and the builder share this code. */
export type RunBuild = (
  job: BuildJob,
  settings: BuildSettings,
  opts: { signal?: AbortSignal; onLog?: (line: string) => void },
) => Promise<BuildActivityResult & { logTail?: string }>;

/** How often output is sent to the workflow while the build writes some. */
const LOG_FLUSH_MS = 1000;
/** Output kept while the workflow cannot be reached; beyond it the oldest is dropped (and said so). */
const MAX_PENDING_CHARS = 1024 * 1024;

/**
 * Replaces every secret the builder holds (registry passwords, GitHub and git credentials) by `***`, in case a build
 * prints one (a RUN step echoing a build arg the user filled with a token is the user's own doing, and stays).
 */
export function redactor(secrets: readonly string[]): (text: string) => string {
  const live = [...new Set(secrets.filter((s) => s.length >= 4))].sort((a, b) => b.length - a.length);
  return (text) => live.reduce((out, secret) => out.split(secret).join('***'), text);
}

/** Every secret in the builder's configuration, for {@link redactor}. */
export function builderSecrets(config: Pick<Config, 'registry' | 'github'>, settings: BuildSettings): string[] {
  const out = Object.values(config.registry.auths).flatMap((a) => [a.password]);
  const gh = config.github.auth;
  if (gh?.kind === 'token') out.push(gh.token);
  for (const auth of Object.values(settings.gitAuth ?? {})) out.push(auth.password);
  return out;
}

/**
 * Batches output lines into signals of at most {@link MAX_LOG_BATCH_CHARS}, about once a second. A failed send keeps
 * the text for the next one (bounded), so a short Temporal outage loses no output; `seq` lets the workflow ignore a
 * batch it already has.
 */
export class LogSender {
  #pending = '';
  #dropped = 0;
  #seq = 0;
  #sending: Promise<void> = Promise.resolve();
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly send: (batch: BuildLogBatch) => Promise<void>,
    private readonly attempt: number,
    private readonly builder: string,
    private readonly redact: (text: string) => string,
  ) {}

  line(line: string): void {
    this.#pending += `${this.redact(line)}\n`;
    if (this.#pending.length > MAX_PENDING_CHARS) {
      const over = this.#pending.length - MAX_PENDING_CHARS;
      this.#pending = this.#pending.slice(over);
      this.#dropped += over;
    }
    if (this.#pending.length >= MAX_LOG_BATCH_CHARS) void this.flush();
    else this.#timer ??= setTimeout(() => void this.flush(), LOG_FLUSH_MS);
  }

  /** Sends what is pending, one batch after another; never throws. */
  flush(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#sending = this.#sending.then(async () => {
      while (this.#pending || this.#dropped) {
        const note = this.#dropped ? `[… ${this.#dropped} characters of output dropped]\n` : '';
        const text = note + this.#pending.slice(0, MAX_LOG_BATCH_CHARS - note.length);
        const seq = this.#seq + 1;
        try {
          await this.send({ attempt: this.attempt, seq, text, ...(seq === 1 ? { builder: this.builder } : {}) });
        } catch {
          // Kept for the next flush (the workflow ignores a batch it already has, by seq).
          this.#timer ??= setTimeout(() => void this.flush(), LOG_FLUSH_MS);
          return;
        }
        this.#seq = seq;
        this.#dropped = 0;
        this.#pending = this.#pending.slice(text.length - note.length);
      }
    });
    return this.#sending;
  }

  async close(): Promise<void> {
    await this.flush();
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}

export function createBuildActivities(
  config: Pick<Config, 'registry' | 'github'>,
  settings: BuildSettings,
  runBuild: RunBuild,
): BuildActivities {
  const redact = redactor(builderSecrets(config, settings));
  const builder = `${hostname()}/${process.pid}`;
  return withActivityFailures({
    async build(job: BuildJob): Promise<BuildActivityResult> {
      const ctx = Context.current();
      const workflowId = ctx.info.workflowExecution?.workflowId;
      if (!workflowId) throw new Error('the build activity runs only in a build workflow');
      const handle = ctx.client.workflow.getHandle(workflowId);
      const logs = new LogSender((batch) => handle.signal(buildLogSignal, batch), ctx.info.attempt, builder, redact);
      logs.line(`flui-builder ${builder}: building ${job.image} at ${job.source.commit} (attempt ${ctx.info.attempt})`);
      try {
        const result = await runBuild(job, settings, {
          signal: ctx.cancellationSignal,
          onLog: (line) => logs.line(line),
        });
        logs.line(`pushed ${result.image}@${result.digest} as ${result.tags.join(', ')}`);
        return {
          image: result.image,
          digest: result.digest,
          tags: result.tags,
          durationMs: result.durationMs,
          cachedSteps: result.cachedSteps,
        };
      } catch (err) {
        // A cancel aborted the engine: report the attempt cancelled (not failed), as Temporal expects.
        if (ctx.cancellationSignal.aborted) throw new CancelledFailure('the build was cancelled');
        const message = redact(err instanceof Error ? err.message : String(err));
        logs.line(`build failed: ${message}`);
        if (err instanceof ServiceError) {
          throw new ServiceError({
            service: err.service,
            kind: err.kind,
            message: redact(err.problem),
            hint: err.hint,
            retryAfterSeconds: err.retryAfterSeconds,
            status: err.status,
          });
        }
        // The redacted message only: a cause would carry the original text (and any secret in it) into the history.
        // eslint-disable-next-line preserve-caught-error
        throw new Error(message);
      } finally {
        await logs.close();
      }
    },
  });
}
