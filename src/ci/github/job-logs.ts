/**
 * `flui logs` for GitHub Actions, the part that needs no network: where a reader is in a run's log (the cursor) and
 * what the next chunk holds. GitHub serves a job's log only once the job has finished, as one plain-text file, so a
 * run's log is its jobs' logs one after the other, each printed whole and once; while the run goes on, a chunk holds
 * the jobs finished so far plus, once, a line pointing at the run's page, where GitHub shows the live output.
 *
 * The cursor says which jobs were printed in full and how far into the next one the last chunk got (a chunk is capped
 * so it fits in a Temporal payload); it is opaque to clients, who hand it back as they got it.
 */
import { ServiceError } from '../../errors.ts';
import type { LogChunk } from '../backend.ts';

/** A chunk's text stays under this many characters (a Temporal payload is capped at 2 MB; results warn past 512 KB). */
export const MAX_CHUNK_CHARS = 256 * 1024;
/** A finished job's log may take a little while to be served; until this long after it finished, wait for it. */
export const LOG_GRACE_MS = 60_000;
/** More jobs than this in one run is not a run Flui dispatched (its pipeline has one); bounds the cursor too. */
export const MAX_JOBS = 500;

export interface JobLogCursor {
  /** Ids of the jobs printed in full. */
  printed: number[];
  /** The line pointing at the run's page (while it runs) was printed. */
  noticed: boolean;
  /** The job printed in part, and how many characters of its log were. */
  partial?: { job: number; offset: number };
}

const VERSION = 'gh1';
const CURSOR = /^gh1;n=([01]);p=((?:[0-9]{1,20}(?:,[0-9]{1,20})*)?)(?:;o=([0-9]{1,20})@([0-9]{1,12}))?$/;

export function formatCursor(c: JobLogCursor): string {
  const partial = c.partial ? `;o=${c.partial.job}@${c.partial.offset}` : '';
  return `${VERSION};n=${c.noticed ? 1 : 0};p=${c.printed.join(',')}${partial}`;
}

/** The start of the log for undefined; a cursor this backend did not hand out is refused (`invalid`). */
export function parseCursor(cursor: string | undefined): JobLogCursor {
  if (cursor === undefined || cursor === '') return { printed: [], noticed: false };
  const m = cursor.length <= 16_384 ? CURSOR.exec(cursor) : null;
  const printed = m?.[2] ? m[2].split(',').map(Number) : [];
  if (!m || printed.length > MAX_JOBS) {
    throw new ServiceError({
      service: 'GitHub',
      kind: 'invalid',
      message: 'the log cursor is not one GitHub Actions logs handed out: read the log again from the start',
    });
  }
  return {
    printed,
    noticed: m[1] === '1',
    ...(m[3] !== undefined ? { partial: { job: Number(m[3]), offset: Number(m[4]) } } : {}),
  };
}

/** What `flui logs` needs of a job (GitHub's `job` object). */
export interface JobSummary {
  id: number;
  name: string;
  status: string;
  conclusion: string | null;
  started_at?: string | null;
  completed_at?: string | null;
}

/** A job's log, or undefined when GitHub does not serve it (not yet, or no longer). */
export type JobLogReader = (job: JobSummary) => Promise<string | undefined>;

export interface ChunkInput {
  /** The run has completed: its job list is final. */
  runCompleted: boolean;
  /** The run's page, for the line printed while it runs. */
  htmlUrl: string;
  jobs: JobSummary[];
  cursor: JobLogCursor;
  read: JobLogReader;
  now?: number;
  maxChars?: number;
}

/** Jobs in the order they ran: start time, then id (a job that never started, skipped, sorts last). */
export function jobOrder(a: JobSummary, b: JobSummary): number {
  const ta = a.started_at ? Date.parse(a.started_at) : Infinity;
  const tb = b.started_at ? Date.parse(b.started_at) : Infinity;
  return ta === tb ? a.id - b.id : ta - tb;
}

const header = (job: JobSummary) => `=== job ${job.name} (${job.conclusion ?? job.status}) ===\n`;
const withNewline = (text: string) => (text === '' || text.endsWith('\n') ? text : `${text}\n`);

/**
 * The next chunk: the finished jobs not printed yet, in the order they ran, each under a header line, up to
 * `maxChars`; then, while the run goes on, the line pointing at its page (once). `done` once the run completed and
 * every job of it was printed.
 */
export async function nextChunk(input: ChunkInput): Promise<LogChunk> {
  const { runCompleted, htmlUrl, jobs, read } = input;
  const now = input.now ?? Date.now();
  const maxChars = input.maxChars ?? MAX_CHUNK_CHARS;
  const cursor: JobLogCursor = { ...input.cursor, printed: [...input.cursor.printed] };
  const printed = new Set(cursor.printed);
  const pending = jobs
    .filter((j) => j.status === 'completed' && !printed.has(j.id))
    .sort((a, b) => (cursor.partial?.job === a.id ? -1 : cursor.partial?.job === b.id ? 1 : jobOrder(a, b)));
  let text = '';
  let waiting = false;
  for (const job of pending) {
    const offset = cursor.partial?.job === job.id ? cursor.partial.offset : 0;
    let log: string | undefined;
    if (job.conclusion !== 'skipped') {
      log = await read(job);
      if (log === undefined) {
        const finished = job.completed_at ? Date.parse(job.completed_at) : now;
        if (now - finished < LOG_GRACE_MS) {
          waiting = true; // not served yet: the next call prints it, in its place
          break;
        }
        log = '(GitHub no longer serves this log: it keeps job logs for the retention period of the repository)\n';
      }
    }
    const rest = withNewline(log ?? '').slice(offset);
    const head = offset === 0 ? header(job) : '';
    const room = maxChars - text.length - head.length;
    if (rest.length > room && (text !== '' || room <= 0)) break; // the whole job next time, in a chunk of its own
    if (rest.length > room) {
      text += head + rest.slice(0, room);
      cursor.partial = { job: job.id, offset: offset + room };
      return { text, cursor: formatCursor(cursor), done: false };
    }
    text += head + rest;
    cursor.printed.push(job.id);
    if (cursor.partial?.job === job.id) delete cursor.partial;
  }
  const allPrinted = jobs.every((j) => j.status !== 'completed' || cursor.printed.includes(j.id));
  const done = runCompleted && !waiting && allPrinted && jobs.every((j) => j.status === 'completed');
  if (!runCompleted && !cursor.noticed && allPrinted) {
    text += `(the run is still going: GitHub serves a job's log once the job has finished; live output: ${htmlUrl})\n`;
    cursor.noticed = true;
  }
  return { text, cursor: formatCursor(cursor), done };
}
