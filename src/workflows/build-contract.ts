/**
 * The self-hosted build's contract: what the build workflow (src/workflows/build.ts), its `build` activity (run by
 * `flui-builder`, src/activities/build.ts) and the self-hosted CI backend (src/ci/self-hosted/) agree on. The build
 * workflow's id is derived from the deploy's run key, so one deploy attempt has exactly one build.
 *
 * Deterministic-safe: only `@temporalio/workflow` definitions, types and pure functions (the log tail below runs in
 * the workflow).
 */
import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { CiRunResult } from './contract.ts';
import type { BuildSpec } from '../build/types.ts';

/** Where the builders poll for builds, unless FLUI_BUILD_TASK_QUEUE says otherwise. */
export const BUILD_TASK_QUEUE = 'flui-build';

/** The build workflow of one deploy attempt: `build-<run key>` (a run key is `<ns>.<app>.<nonce>[/<attempt>]`). */
export function buildWorkflowId(runKey: string): string {
  return `build-${runKey}`;
}

/**
 * Where the source is fetched from, at an exact commit (never a branch: it could move during the build), and one
 * build as the engine takes it: plain data from the manifest (hostile: the engine checks it). Types only, so the
 * workflow bundle takes nothing of the engine itself.
 */
export type { BuildSource } from '../build/types.ts';
export type BuildJob = BuildSpec;

/** What the build workflow is started with: the job, and whom to tell when it ends. Never a secret. */
export interface BuildRequest {
  runKey: string;
  job: BuildJob;
  /** The builders' task queue (FLUI_BUILD_TASK_QUEUE of the worker that started the build). */
  buildTaskQueue: string;
  /** The deploy workflow to signal `runCompleted` when the build succeeds (polling stays the fallback). */
  deploy: { workflowId: string; deployId: string };
  /** Temporal Web UI base and namespace, for the run page; none when the UI's address is not known. */
  webUi?: { base: string; namespace: string };
}

/** What the `build` activity returns. */
export interface BuildActivityResult {
  image: string;
  digest: string;
  tags: string[];
  durationMs: number;
  cachedSteps: number;
}

/** How a build ended; a failed build completes the workflow (not fails it) so the reason and the log stay readable. */
export interface BuildOutcome extends CiRunResult {
  image?: string;
  tags?: string[];
  /** Why it did not succeed, with the tail of the build's log. */
  error?: string;
  durationMs?: number;
  cachedSteps?: number;
}

/** Memo of a build workflow: read by `status` without a query (so it works when no worker answers). */
export interface BuildMemo {
  headSha: string;
  image: string;
}
export const BUILD_MEMO_KEY = 'build';

/** The build's progress, for `flui status` and the backend. */
export interface BuildState {
  phase: 'waiting-for-builder' | 'building' | 'done';
  /** Attempts of the `build` activity that sent output (a builder that died is followed by another). */
  attempt: number;
  /** Identity of the builder running (or that ran) the current attempt. */
  builder?: string;
}

/** A batch of log lines from the `build` activity: `seq` counts batches within an attempt, so a resend is ignored. */
export interface BuildLogBatch {
  attempt: number;
  seq: number;
  text: string;
  /** The builder's identity (first batch of an attempt). */
  builder?: string;
}

export interface BuildLogsRead {
  text: string;
  cursor: string;
  done: boolean;
}

export const buildLogSignal = defineSignal<[BuildLogBatch]>('buildLog');
export const buildLogsQuery = defineQuery<BuildLogsRead, [string | undefined]>('buildLogs');
export const buildStateQuery = defineQuery<BuildState>('buildState');

/** A log batch the activity sends at most (~1/s): well under Temporal's payload limits. */
export const MAX_LOG_BATCH_CHARS = 32 * 1024;
/** What the workflow keeps of a build's log: its last MiB; a reader further behind is told what was dropped. */
export const LOG_TAIL_CHARS = 1024 * 1024;
/** What one query returns at most: a follower catches up in a few reads. */
export const MAX_LOG_READ_CHARS = 256 * 1024;

/**
 * A bounded tail of a growing text, read by absolute offset (the cursor). Pure and deterministic: it lives in the
 * build workflow, and survives a builder's death with the workflow's state.
 */
export class LogTail {
  #text = '';
  /** Absolute offset of `#text`'s first character. */
  #start = 0;

  constructor(readonly capacity: number = LOG_TAIL_CHARS) {}

  /** Offset of the end: everything ever appended. */
  get end(): number {
    return this.#start + this.#text.length;
  }

  append(text: string): void {
    if (!text) return;
    this.#text += text;
    const over = this.#text.length - this.capacity;
    if (over > 0) {
      this.#text = this.#text.slice(over);
      this.#start += over;
    }
  }

  /** Text after `cursor` (an offset as a string; undefined or malformed: the start), at most `max` characters. */
  read(cursor: string | undefined, max: number = MAX_LOG_READ_CHARS): { text: string; cursor: string } {
    const asked = cursor && /^[0-9]{1,15}$/.test(cursor) ? Number(cursor) : 0;
    const from = Math.min(Math.max(asked, this.#start), this.end);
    const dropped = from - asked;
    const text = this.#text.slice(from - this.#start, from - this.#start + max);
    const note = dropped > 0 && asked < this.end ? `[… ${dropped} characters of earlier output dropped]\n` : '';
    return { text: note + text, cursor: String(from + text.length) };
  }
}

/** The run's page: the build's Temporal Web UI page, or how to see it with the Temporal CLI. */
export function buildRunUrl(webUi: BuildRequest['webUi'], workflowId: string, runId?: string): string {
  if (!webUi) return `temporal workflow show --workflow-id ${workflowId}`;
  const page = `${webUi.base}/namespaces/${encodeURIComponent(webUi.namespace)}/workflows/${encodeURIComponent(workflowId)}`;
  return runId ? `${page}/${runId}/history` : page;
}

export type { CiRunResult };
