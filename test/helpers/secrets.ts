/**
 * Looks for secrets where they must never be: every workflow history (inputs, results, failures, heartbeats,
 * signals, memos, search attributes) of a namespace, and log files. Payloads are decoded the way Web UI and
 * `temporal workflow show` see them, and searched raw and base64-encoded.
 */
import { readFile } from 'node:fs/promises';
import type { Client } from '@temporalio/client';
import type { GitHubEmulator } from '@flui/github-emulator';
import type { GitLabEmulator } from '@flui/gitlab-emulator';

export interface SecretScan {
  workflows: number;
  events: number;
  logFiles: number;
  bytes: number;
  hits: string[];
}

function needles(secrets: string[]): { secret: string; forms: string[] }[] {
  return secrets
    .filter((s) => s.length >= 6)
    .map((secret) => ({
      secret,
      forms: [secret, Buffer.from(secret).toString('base64'), JSON.stringify(secret).slice(1, -1)],
    }));
}

function mask(secret: string): string {
  return `${secret.slice(0, 2)}…(${secret.length} chars)`;
}

/**
 * The emulated CI's job logs (every step of every run of every repository that was dispatched): what a person reading
 * the run page would see, so a credential must never appear there either (GitHub masks registered secrets; a token
 * written by a `run:` step would not be).
 */
export function ciJobLogs(github: GitHubEmulator): { where: string; text: string }[] {
  return Object.keys(github.records.dispatches).flatMap((repo) =>
    github.runs(repo).map((run) => ({
      where: `CI job log of ${repo} run ${run.id}`,
      text: (run.steps ?? []).map((step) => step.log.join('\n')).join('\n'),
    })),
  );
}

/**
 * The GitLab emulator's job traces (every job of every pipeline of every project a pipeline was created in): the job
 * log a person reads on GitLab, where a credential must never appear either.
 */
export function gitlabJobTraces(gitlab: GitLabEmulator): { where: string; text: string }[] {
  return Object.keys(gitlab.records.pipelinesCreated).flatMap((repo) =>
    gitlab
      .pipelines(repo)
      .flatMap((p) =>
        p.jobs.map((j) => ({ where: `GitLab job trace of ${repo} job ${j.id}`, text: gitlab.trace(repo, j.id) ?? '' })),
      ),
  );
}

export async function scanForSecrets(
  client: Client,
  secrets: string[],
  logFiles: string[] = [],
  texts: { where: string; text: string }[] = [],
): Promise<SecretScan & { texts: number }> {
  const scan: SecretScan & { texts: number } = { workflows: 0, events: 0, logFiles: 0, bytes: 0, hits: [], texts: 0 };
  const wanted = needles(secrets);
  const check = (where: string, text: string) => {
    scan.bytes += text.length;
    for (const { secret, forms } of wanted) {
      if (forms.some((f) => text.includes(f))) scan.hits.push(`${mask(secret)} in ${where}`);
    }
  };

  for await (const wf of client.workflow.list()) {
    scan.workflows++;
    check(`search attributes/memo of ${wf.workflowId}`, JSON.stringify([wf.searchAttributes, wf.memo]));
    const history = await client.workflow.getHandle(wf.workflowId, wf.runId).fetchHistory();
    scan.events += history.events?.length ?? 0;
    // Payload data is bytes; decode to text so JSON-encoded values are searchable.
    const text = JSON.stringify(history, (_key, value: unknown) =>
      value instanceof Uint8Array ? Buffer.from(value).toString('utf8') : value,
    );
    check(`history of ${wf.workflowId}/${wf.runId}`, text);
  }
  for (const file of logFiles) {
    const text = await readFile(file, 'utf8').catch(() => undefined);
    if (text === undefined) continue;
    scan.logFiles++;
    check(`log ${file}`, text);
  }
  for (const { where, text } of texts) {
    scan.texts++;
    check(where, text);
  }
  return scan;
}
