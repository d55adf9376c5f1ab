/**
 * The naive way to wait on many CI runs at once, for the benchmarks: one loop per run that asks GitHub for the run
 * every 3 seconds without conditional requests, as `gh run watch` does. All loops share one process (cheaper than a
 * `gh` process per run, so the comparison favours the naive side). Runs until SIGTERM, then prints its counts.
 *
 *   node --import tsx bench/naive-watch.ts <api-url> <token> <owner/repo:run-id>...
 */
import { Octokit } from '@octokit/rest';
import { setTimeout as sleep } from 'node:timers/promises';

const [apiUrl, token, ...runs] = process.argv.slice(2);
const gh = new Octokit({ auth: token, baseUrl: apiUrl });
const counts = { requests: 0, refused: 0 };
let stopping = false;

async function watch(target: string): Promise<void> {
  const [fullName, runId] = target.split(':') as [string, string];
  const [owner, repo] = fullName.split('/') as [string, string];
  await sleep(Math.random() * 3000); // the scripts were not all started in the same millisecond
  while (!stopping) {
    counts.requests++;
    const run = await gh.rest.actions
      .getWorkflowRun({ owner, repo, run_id: Number(runId) })
      .catch((err: { status?: number }) => {
        counts.refused++;
        return err.status === undefined ? undefined : { data: { status: 'unknown' } };
      });
    if (run?.data.status === 'completed') return;
    await sleep(3000);
  }
}

process.on('SIGTERM', () => {
  stopping = true;
  process.stdout.write(`${JSON.stringify(counts)}\n`);
  process.exit(0);
});
process.stderr.write(`watching ${runs.length} runs\n`);
await Promise.all(runs.map(watch));
