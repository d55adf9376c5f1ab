/**
 * Starts the GitLab emulator from a shell and prints its URL and a token:
 *
 *   node --import tsx packages/gitlab-emulator/src/main.ts [--port 8788] [--data-dir .flui/gitlab] [--project acme/web]
 *
 * Then drive it with gitbeaker (`host`), curl (`PRIVATE-TOKEN`), or the control API under /_emulator/ (control.ts).
 * Ctrl-C stops it.
 */
import { parseArgs } from 'node:util';
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

function fail(message: string): never {
  process.stderr.write(`${message}\n\n${USAGE}\n`);
  process.exit(2);
}

function number(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) fail(`--${name} must be a whole number ≥ 0, not "${value}"`);
  return n;
}

async function main(): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({
      options: {
        host: { type: 'string' },
        port: { type: 'string' },
        'data-dir': { type: 'string' },
        project: { type: 'string', multiple: true },
        'webhook-url': { type: 'string' },
        'webhook-token': { type: 'string' },
        'pending-ms': { type: 'string' },
        'build-ms': { type: 'string' },
        'rate-limit': { type: 'string' },
        version: { type: 'string' },
        'insecure-registry': { type: 'string', multiple: true },
        'no-contract': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    });
  } catch (err) {
    fail((err as Error).message);
  }
  const v = parsed.values;
  if (v.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
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

  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    const { operations, responses, violations } = gitlab.contract.summary();
    process.stdout.write(
      `stopping; contract: ${responses} responses of ${operations} operations checked, ${violations.length} violations\n`,
    );
    gitlab.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`GitLab emulator: ${(err as Error).message}\n`);
  process.exit(1);
});
