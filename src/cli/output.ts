/** How commands print: stable JSON with --json, tables and short lines for people otherwise. */
import type { AppStatus, Build, ImageListing } from '../client/index.ts';
import { describeCancellation, type DeployStatus } from '../workflows/contract.ts';
import type { Io } from './io.ts';

/** Prints `value` as JSON with --json, else what `human` returns. */
export function print(io: Io, json: boolean, value: unknown, human: () => string): void {
  io.out(json ? `${JSON.stringify(value, null, 2)}\n` : human());
}

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

export const shortDigest = (digest?: string) => (digest ? `${digest.slice(0, 19)}…` : '-');
export const shortSha = (sha?: string) => (sha ? sha.slice(0, 12) : '-');
/** `2026-05-01 12:00:00Z`: sortable, second precision. */
export const when = (iso: string) => `${iso.slice(0, 19).replace('T', ' ')}Z`;
/** The `-n` flag to repeat in a suggested command, empty for the default namespace. */
export const nsFlag = (namespace: string) => (namespace === 'default' ? '' : ` -n ${namespace}`);

export function formatStatus(s: DeployStatus | AppStatus): string {
  const lines = [
    `app:      ${s.namespace}/${s.app}`,
    `deploy:   ${s.deployId} (${s.kind}${s.attempt > 1 ? `, attempt ${s.attempt}` : ''})`,
    `phase:    ${s.phase}${s.failedPhase && s.phase !== 'succeeded' ? ` (failed while ${s.failedPhase})` : ''}`,
  ];
  if (s.cancelled) lines.push(`cancelled ${describeCancellation(s.cancelled)}`);
  if (s.commit) lines.push(`commit:   ${s.commit}`);
  if (s.pipeline?.path) {
    const what = s.pipeline.changes?.length
      ? s.pipeline.changes.join('; ')
      : s.pipeline.changed
        ? `updated${s.pipeline.commit ? ` in ${shortSha(s.pipeline.commit)}` : ''}`
        : 'already current, nothing written';
    lines.push(`pipeline: ${s.pipeline.path}: ${what}`);
  }
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
