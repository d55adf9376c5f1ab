/**
 * Starts the GitHub emulator from a shell and prints its URL and a token:
 *
 *   node --import tsx packages/github-emulator/src/main.ts [--port 8787] [--data-dir .flui/github] [--repo acme/web] ...
 *
 * Then drive it with Octokit (`baseUrl`), gh (`GH_HOST` does not take a port: use the API directly), curl, or the
 * control API under /_emulator/ (see control.ts). Ctrl-C stops it.
 */
import { launch, parseLauncherArgs, stopOnSignal } from '@flui/emulator-kit/cli';
import { startGitHubEmulator } from './index.ts';

const USAGE = `Usage: node --import tsx packages/github-emulator/src/main.ts [options]

Options:
  --host HOST              listen address (default 127.0.0.1)
  --port PORT              port (default: a free one)
  --data-dir DIR           keep state here across restarts
  --repo OWNER/NAME        create this repository (repeatable)
  --webhook-url URL        deliver workflow_run webhooks here
  --webhook-secret SECRET  sign them with this secret (required with --webhook-url)
  --queued-ms MS           time a run spends queued (default 200)
  --build-ms MS            least time a build takes (default 1000)
  --rate-limit N           requests per token per hour (default 5000)
  --insecure-registry HOST registries spoken to over plain HTTP (repeatable; default 127.0.0.1, localhost)
  --no-contract            do not check responses against GitHub's OpenAPI description
  -h, --help               this text`;

async function main(): Promise<void> {
  const args = parseLauncherArgs(USAGE, {
    repo: { type: 'string', multiple: true },
    'webhook-secret': { type: 'string' },
    'queued-ms': { type: 'string' },
  });
  if (!args) return;
  const { values: v, fail, number } = args;
  if (v['webhook-url'] && !v['webhook-secret']) fail('--webhook-url needs --webhook-secret');
  const repos = (v.repo ?? []).map((r) => {
    const m = /^([A-Za-z0-9_.-]+)\/([A-Za-z0-9_.-]+)$/.exec(r);
    if (!m) return fail(`--repo takes OWNER/NAME, not "${r}"`);
    return { owner: m[1]!, name: m[2]! };
  });

  const github = await startGitHubEmulator({
    host: v.host,
    port: number(v.port, 'port'),
    dataDir: v['data-dir'],
    webhook: v['webhook-url'] ? { url: v['webhook-url'], secret: v['webhook-secret']! } : undefined,
    runner: { queuedMs: number(v['queued-ms'], 'queued-ms'), buildMs: number(v['build-ms'], 'build-ms') },
    rateLimit: number(v['rate-limit'], 'rate-limit'),
    registry: v['insecure-registry'] ? { insecureHosts: v['insecure-registry'] } : undefined,
    contract: !v['no-contract'],
  });
  github.contract.onViolation = (violation) => process.stderr.write(`contract violation: ${violation}\n`);
  for (const r of repos) await github.createRepo(r);
  const token = github.createToken();
  process.stdout.write(
    `GitHub emulator listening on ${github.url}\n` +
      `GITHUB_API_URL=${github.url}\n` +
      `GITHUB_TOKEN=${token}\n` +
      (repos.length ? `repositories: ${repos.map((r) => `${r.owner}/${r.name}`).join(', ')}\n` : '') +
      `control API: ${github.url}/_emulator/\n`,
  );

  stopOnSignal(github);
}

launch('GitHub emulator', main);
