/**
 * `flui logs` on GitHub Actions without a server: the cursor round-trips and refuses what it did not hand out, and a
 * run read chunk by chunk, while its jobs finish one by one, prints every job once, whole and in order.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  formatCursor,
  LOG_GRACE_MS,
  nextChunk,
  parseCursor,
  type JobLogCursor,
  type JobSummary,
} from '../../src/ci/github/job-logs.ts';
import { ServiceError } from '../../src/errors.ts';

const URL = 'https://github.com/acme/web/actions/runs/7';
const T0 = Date.parse('2026-01-01T00:00:00Z');
const at = (s: number) => new Date(T0 + s * 1000).toISOString();

function job(id: number, state: 'queued' | 'in_progress' | 'completed', startS?: number, endS?: number): JobSummary {
  return {
    id,
    name: `job${id}`,
    status: state,
    conclusion: state === 'completed' ? 'success' : null,
    started_at: startS === undefined ? null : at(startS),
    completed_at: endS === undefined ? null : at(endS),
  };
}

/** Reads every chunk until `done` or an empty chunk, as `flui logs` without --follow does. */
async function readAll(
  input: Omit<Parameters<typeof nextChunk>[0], 'cursor'>,
  cursor: JobLogCursor = { printed: [], noticed: false },
) {
  let text = '';
  let c = formatCursor(cursor);
  for (let i = 0; i < 100; i++) {
    const chunk = await nextChunk({ ...input, cursor: parseCursor(c) });
    text += chunk.text;
    c = chunk.cursor;
    if (chunk.done || chunk.text === '') return { text, cursor: c, done: chunk.done };
  }
  assert.fail('no end');
}

describe('GitHub job log cursor', () => {
  it('round-trips, and starts at the beginning when absent', () => {
    for (const c of [
      { printed: [], noticed: false },
      { printed: [11, 21, 31], noticed: true },
      { printed: [11], noticed: false, partial: { job: 21, offset: 262144 } },
    ]) {
      assert.deepEqual(parseCursor(formatCursor(c)), c);
    }
    assert.deepEqual(parseCursor(undefined), { printed: [], noticed: false });
  });

  it('refuses a cursor it did not hand out (a permanent, invalid request)', () => {
    for (const bad of ['end', 'gh1;n=2;p=', 'gh1;n=0;p=1,,2', 'gh1;n=0;p=x', `gh1;n=0;p=${'1,'.repeat(600)}1`]) {
      assert.throws(
        () => parseCursor(bad),
        (e: unknown) => e instanceof ServiceError && e.kind === 'invalid' && !e.retryable,
        bad,
      );
    }
  });
});

describe('GitHub job log chunks', () => {
  const logs: Record<number, string> = { 1: 'one a\none b\n', 2: 'two a\ntwo b', 3: 'three\n' };
  const read = async (j: JobSummary) => logs[j.id];

  it('a completed run: every job under its header, in the order they ran, then done', async () => {
    const jobs = [job(3, 'completed', 20, 30), job(1, 'completed', 0, 10), job(2, 'completed', 10, 20)];
    const chunk = await nextChunk({ runCompleted: true, htmlUrl: URL, jobs, cursor: parseCursor(undefined), read });
    assert.equal(
      chunk.text,
      '=== job job1 (success) ===\none a\none b\n=== job job2 (success) ===\ntwo a\ntwo b\n=== job job3 (success) ===\nthree\n',
    );
    assert.equal(chunk.done, true);
    const again = await nextChunk({ runCompleted: true, htmlUrl: URL, jobs, cursor: parseCursor(chunk.cursor), read });
    assert.deepEqual([again.text, again.done], ['', true], 'nothing twice');
  });

  it('while the run goes on: the finished jobs, the run page once, then the rest as jobs finish', async () => {
    const now = T0 + 100_000;
    const states: JobSummary[][] = [
      [job(1, 'in_progress', 0), job(2, 'queued')],
      [job(1, 'completed', 0, 10), job(2, 'in_progress', 10)],
      [job(1, 'completed', 0, 10), job(2, 'in_progress', 10)],
      [job(1, 'completed', 0, 10), job(2, 'completed', 10, 20), job(3, 'completed', 20, 30)],
    ];
    let cursor = formatCursor({ printed: [], noticed: false });
    const texts: string[] = [];
    const dones: boolean[] = [];
    for (const [i, jobs] of states.entries()) {
      const last = i === states.length - 1;
      const chunk = await nextChunk({ runCompleted: last, htmlUrl: URL, jobs, cursor: parseCursor(cursor), read, now });
      texts.push(chunk.text);
      dones.push(chunk.done);
      cursor = chunk.cursor;
    }
    assert.match(
      texts[0]!,
      /^\(the run is still going: .*live output: https:\/\/github\.com\/acme\/web\/actions\/runs\/7\)\n$/,
    );
    assert.equal(texts[1], '=== job job1 (success) ===\none a\none b\n');
    assert.equal(texts[2], '', 'no repeat of the notice or of job1');
    assert.equal(texts[3], '=== job job2 (success) ===\ntwo a\ntwo b\n=== job job3 (success) ===\nthree\n');
    assert.deepEqual(dones, [false, false, false, true]);
  });

  it('a log longer than a chunk continues where the last chunk stopped, nothing lost or repeated', async () => {
    const big = Array.from({ length: 500 }, (_, i) => `line ${i}`).join('\n') + '\n';
    const jobs = [job(1, 'completed', 0, 10), job(2, 'completed', 10, 20)];
    const all = await readAll({
      runCompleted: true,
      htmlUrl: URL,
      jobs,
      read: async (j) => (j.id === 1 ? big : 'small\n'),
      maxChars: 1000,
    });
    assert.equal(all.done, true);
    assert.equal(all.text, `=== job job1 (success) ===\n${big}=== job job2 (success) ===\nsmall\n`);
  });

  it('a finished job whose log is not served yet waits for it; one that expired says so', async () => {
    const jobs = [job(1, 'completed', 0, 10), job(2, 'completed', 10, 20)];
    const missing = async (j: JobSummary) => (j.id === 1 ? undefined : logs[j.id]);
    const soon = await nextChunk({
      runCompleted: true,
      htmlUrl: URL,
      jobs,
      cursor: parseCursor(undefined),
      read: missing,
      now: T0 + 20_000,
    });
    assert.deepEqual([soon.text, soon.done], ['', false], 'job2 is not printed before job1');
    const later = await nextChunk({
      runCompleted: true,
      htmlUrl: URL,
      jobs,
      cursor: parseCursor(soon.cursor),
      read: missing,
      now: T0 + 10_000 + LOG_GRACE_MS + 1,
    });
    assert.match(later.text, /^=== job job1 \(success\) ===\n\(GitHub no longer serves this log.*\n=== job job2/);
    assert.equal(later.done, true);
  });

  it('a skipped job is listed without reading a log', async () => {
    const skipped = { ...job(2, 'completed'), conclusion: 'skipped' };
    const chunk = await nextChunk({
      runCompleted: true,
      htmlUrl: URL,
      jobs: [job(1, 'completed', 0, 10), skipped],
      cursor: parseCursor(undefined),
      read: async (j) => (j.id === 2 ? assert.fail('skipped jobs have no log') : logs[j.id]),
    });
    assert.equal(chunk.text, '=== job job1 (success) ===\none a\none b\n=== job job2 (skipped) ===\n');
    assert.equal(chunk.done, true);
  });
});
