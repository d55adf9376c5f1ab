/**
 * Starts the GitLab emulator from a shell and prints its URL and a token:
 *
 *   node --import tsx packages/gitlab-emulator/src/main.ts [--port 8788] [--data-dir .flui/gitlab] [--project acme/web]
 *
 * Then drive it with gitbeaker (`host`), curl (`PRIVATE-TOKEN`), or the control API under /_emulator/ (control.ts).
 * Ctrl-C stops it.
 */
import { launch, parseLauncherArgs, stopOnSignal } from '@flui/emulator-kit/cli';
import { startGitLabEmulator } from './index.ts';

const USAGE = `Usage: node --import tsx packages/gitlab-emulator/src/main.ts [options]

Options:
  --host HOST              listen address (default 127.0.0.1)
  --port PORT              port (default: a free one)
  --data-dir DIR           keep state here across restarts
  --project GROUP/NAME     create this project (repeatable; nested groups allowed)
  --webhook-url URL        deliver Pipeline Hook webhooks here
  --webhook-token TOKEN    send it as X-Gitlab-Token (required with --webhook-url)
  --pending-ms MS          time a pipeline stays pending (default 200)
  --build-ms MS            least time a job takes (default 1000)
  --rate-limit N           requests per token per minute (default 2000)
  --version VERSION        the GitLab version emulated (default 17.10.0)
  --insecure-registry HOST registries spoken to over plain HTTP (repeatable; default 127.0.0.1, localhost)
  --no-contract            do not check responses against the contract schemas
  -h, --help               this text`;

async function main(): Promise<void> {
  const args = parseLauncherArgs(USAGE, {
    project: { type: 'string', multiple: true },
    'webhook-token': { type: 'string' },
    'pending-ms': { type: 'string' },
    version: { type: 'string' },
  });
  if (!args) return;
  const { values: v, fail, number } = args;
  if (v['webhook-url'] && !v['webhook-token']) fail('--webhook-url needs --webhook-token');
  if (v.version && !/^\d+\.\d+(\.\d+)?$/.test(v.version))
    fail(`--version takes MAJOR.MINOR[.PATCH], not "${v.version}"`);
  const projects = v.project ?? [];
  for (const p of projects)
    if (!/^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)+$/.test(p)) fail(`--project takes GROUP[/SUBGROUP]/NAME, not "${p}"`);

  const gitlab = await startGitLabEmulator({
    host: v.host,
    port: number(v.port, 'port'),
    dataDir: v['data-dir'],
    webhook: v['webhook-url'] ? { url: v['webhook-url'], token: v['webhook-token']! } : undefined,
    runner: { pendingMs: number(v['pending-ms'], 'pending-ms'), buildMs: number(v['build-ms'], 'build-ms') },
    rateLimit: number(v['rate-limit'], 'rate-limit'),
    version: v.version,
    registry: v['insecure-registry'] ? { insecureHosts: v['insecure-registry'] } : undefined,
    contract: !v['no-contract'],
  });
  gitlab.contract.onViolation = (violation) => process.stderr.write(`contract violation: ${violation}\n`);
  for (const path of projects) await gitlab.createProject({ path });
  const token = gitlab.createToken();
  process.stdout.write(
    `GitLab emulator ${gitlab.version} listening on ${gitlab.url}\n` +
      `GITLAB_URL=${gitlab.url}\n` +
      `GITLAB_TOKEN=${token}\n` +
      (projects.length ? `projects: ${projects.join(', ')}\n` : '') +
      `control API: ${gitlab.url}/_emulator/\n`,
  );

  stopOnSignal(gitlab);
}

launch('GitLab emulator', main);
