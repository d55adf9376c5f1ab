/**
 * `flui`: deploys and their history from the terminal, kubectl/gh style. Every command takes --json (stable keys,
 * nothing else on stdout); errors go to stderr and say what to do next.
 */
import { parseArgs } from 'node:util';
import type { Client } from '@temporalio/client';
import { ConfigError, loadConfig, type Config } from '../config.ts';
import { loadManifest, ManifestError } from '../manifest/parse.ts';
import type { DeployStatus } from '../workflows/api.ts';
import * as flui from './index.ts';

export const EXIT = { ok: 0, failed: 1, usage: 2, cancelled: 3, unavailable: 4 } as const;

const HELP = `flui — deploy applications with Flui's build pipeline

Usage:
  flui deploy <manifest.yaml> [--follow] [--policy supersede|queue]
  flui status <app>                 phase, CI run, digest and timings of the current or last deploy
  flui cancel <app> [--reason R]    stop the deploy: the CI run is cancelled, nothing is rolled out
  flui retry <app>                  re-run a failed deploy from the phase that failed
  flui builds <app> [--limit N]     past deploys: commit, CI run, outcome, duration
  flui logs <app> [--build N]       link to the CI run's logs (N: 1 = newest)
  flui images <app>                 digests rolled out, the running one marked
  flui rollback <app> [--to sha256:…] [--follow]

Options:
  -n, --namespace NS   Kubernetes namespace of the app (default: default, or the manifest's)
      --json           machine-readable output
  -h, --help

Exit codes: 0 success · 1 deploy failed · 2 bad usage or invalid manifest (nothing started) ·
            3 cancelled or superseded · 4 Temporal or the cluster unreachable, or bad configuration

Configuration: TEMPORAL_ADDRESS (default 127.0.0.1:7233), TEMPORAL_NAMESPACE, KUBECONFIG (for images).`;

interface Io {
  out(text: string): void;
  err(text: string): void;
  isTTY: boolean;
}

const defaultIo: Io = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
  isTTY: Boolean(process.stdout.isTTY),
};

function table(rows: string[][]): string {
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

const short = (digest?: string) => (digest ? digest.slice(0, 19) : '-');

function outcomeCode(phase: DeployStatus['phase']): number {
  if (phase === 'succeeded') return EXIT.ok;
  if (phase === 'cancelled' || phase === 'superseded') return EXIT.cancelled;
  return EXIT.failed;
}

function describeStatus(s: DeployStatus): string {
  const lines = [
    `app:      ${s.namespace}/${s.app}`,
    `deploy:   ${s.deployId} (${s.kind}${s.attempt > 1 ? `, attempt ${s.attempt}` : ''})`,
    `phase:    ${s.phase}${s.failedPhase && s.phase !== 'succeeded' ? ` (failed while ${s.failedPhase})` : ''}`,
  ];
  if (s.commit) lines.push(`commit:   ${s.commit}`);
  if (s.ciRun) lines.push(`CI run:   ${s.ciRun.htmlUrl}`);
  if (s.image) lines.push(`image:    ${s.image}`);
  if (s.error) lines.push(`error:    ${s.error}`);
  if (s.queued.length) lines.push(`queued:   ${s.queued.join(', ')}`);
  for (const t of s.timings) {
    const secs = t.endedAt ? `${((Date.parse(t.endedAt) - Date.parse(t.startedAt)) / 1000).toFixed(1)}s` : 'running';
    lines.push(`  ${t.phase.padEnd(14)} ${secs}`);
  }
  if (s.phase === 'awaiting-retry')
    lines.push(`Fix the cause, then: flui retry ${s.app}${s.namespace !== 'default' ? ` -n ${s.namespace}` : ''}`);
  return lines.join('\n') + '\n';
}

async function followDeploy(
  client: Client,
  namespace: string,
  app: string,
  deployId: string,
  json: boolean,
  io: Io,
): Promise<number> {
  const t0 = Date.now();
  let last: DeployStatus | undefined;
  for await (const s of flui.follow(client, namespace, app, deployId)) {
    last = s;
    if (json) {
      io.out(`${JSON.stringify({ event: 'status', elapsedSeconds: (Date.now() - t0) / 1000, status: s })}\n`);
      continue;
    }
    const extra = [s.ciRun ? `CI ${s.ciRun.htmlUrl}` : '', s.digest ? short(s.digest) : '', s.error ?? '']
      .filter(Boolean)
      .join(' · ');
    io.out(`${((Date.now() - t0) / 1000).toFixed(1).padStart(6)}s  ${s.phase.padEnd(14)} ${extra}\n`);
  }
  if (!last) return EXIT.failed;
  if (!json && last.phase === 'awaiting-retry')
    io.err(`deploy failed: ${last.error}\nFix the cause, then run: flui retry ${app}\n`);
  return last.phase === 'awaiting-retry' ? EXIT.failed : outcomeCode(last.phase);
}

export async function main(argv: string[], io: Io = defaultIo, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        json: { type: 'boolean' },
        follow: { type: 'boolean', short: 'f' },
        policy: { type: 'string' },
        namespace: { type: 'string', short: 'n' },
        reason: { type: 'string' },
        limit: { type: 'string' },
        build: { type: 'string' },
        to: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    io.err(`flui: ${(err as Error).message}\nRun \`flui --help\` for usage.\n`);
    return EXIT.usage;
  }
  const { values: o, positionals } = parsed;
  const [command, target, ...rest] = positionals;
  if (o.help || !command) {
    (o.help ? io.out : io.err)(`${HELP}\n`);
    return o.help ? EXIT.ok : EXIT.usage;
  }
  const usage = (message: string) => {
    io.err(`flui ${command}: ${message}\nRun \`flui --help\` for usage.\n`);
    return EXIT.usage;
  };
  // Options each command understands; anything else is a mistake worth pointing out.
  const allowed: Record<string, string[]> = {
    deploy: ['follow', 'policy', 'namespace'],
    status: ['namespace'],
    cancel: ['namespace', 'reason'],
    retry: ['namespace', 'follow'],
    builds: ['namespace', 'limit'],
    logs: ['namespace', 'build'],
    images: ['namespace'],
    rollback: ['namespace', 'to', 'follow'],
  };
  const commands = Object.keys(allowed);
  if (!commands.includes(command)) return usage(`unknown command "${command}" (one of ${commands.join(', ')})`);
  const stray = Object.keys(o).find((k) => k !== 'json' && !allowed[command]!.includes(k));
  if (stray) return usage(`--${stray} does not apply to ${command}`);
  if (!target) return usage(command === 'deploy' ? 'missing <manifest.yaml>' : 'missing <app>');
  if (rest.length) return usage(`unexpected argument "${rest[0]}"`);
  if (o.policy !== undefined && !['supersede', 'queue'].includes(o.policy))
    return usage(`--policy must be supersede or queue, not "${o.policy}"`);
  const limit = o.limit === undefined ? 20 : Number(o.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000)
    return usage('--limit must be a whole number from 1 to 1000');
  const buildIndex = o.build === undefined ? 1 : Number(o.build);
  if (!Number.isInteger(buildIndex) || buildIndex < 1) return usage('--build must be a whole number from 1 (newest)');

  const label = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
  if (command !== 'deploy' && !label.test(target))
    return usage(`"${target}" is not an app name (lowercase letters, digits and "-")`);
  if (o.namespace !== undefined && !label.test(o.namespace)) return usage(`"${o.namespace}" is not a namespace name`);
  if (o.to !== undefined && !/^sha256:[a-f0-9]{64}$/.test(o.to))
    return usage('--to must be a digest, "sha256:" followed by 64 hex digits');

  let config: Config;
  try {
    config = loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) {
      io.err(`flui: ${err.message}\n`);
      return EXIT.unavailable;
    }
    throw err;
  }
  const print = (value: unknown, human: () => string) =>
    io.out(o.json ? `${JSON.stringify(value, null, 2)}\n` : human());

  let client: Client | undefined;
  try {
    if (command === 'deploy') {
      const manifest = await loadManifest(target);
      if (o.namespace && o.namespace !== manifest.metadata.namespace) {
        return usage(`--namespace ${o.namespace} differs from the manifest's namespace ${manifest.metadata.namespace}`);
      }
      client = await flui.connect(config);
      const started = await flui.startDeploy(client, manifest, {
        policy: o.policy as 'supersede' | 'queue' | undefined,
        taskQueue: config.temporal.taskQueue,
        requestedBy: env.USER,
      });
      if (!o.follow) {
        print(
          started,
          () =>
            `deploy ${started.deployId} started for ${manifest.metadata.namespace}/${manifest.metadata.name}\nFollow it: flui status ${manifest.metadata.name}\n`,
        );
        return EXIT.ok;
      }
      if (!o.json) io.out(`deploy ${started.deployId} started\n`);
      return await followDeploy(
        client,
        manifest.metadata.namespace,
        manifest.metadata.name,
        started.deployId,
        Boolean(o.json),
        io,
      );
    }

    const namespace = o.namespace ?? 'default';
    if (command === 'images') {
      const images = await flui.listImages(config.kubeconfig, namespace, target);
      print(images, () =>
        images.length
          ? table([
              ['', 'DIGEST', 'DEPLOY', 'COMMIT', 'ROLLED OUT', 'OUTCOME'],
              ...images.map((i) => [
                i.current ? '*' : '',
                i.digest,
                i.deployId,
                (i.commit ?? '-').slice(0, 12),
                i.rolledOutAt,
                i.outcome,
              ]),
            ])
          : `no images rolled out for ${namespace}/${target} yet\n`,
      );
      return EXIT.ok;
    }

    client = await flui.connect(config);
    switch (command) {
      case 'status': {
        const s = await flui.status(client, namespace, target);
        print(s, () => describeStatus(s));
        return EXIT.ok;
      }
      case 'cancel': {
        const s = await flui.cancel(client, namespace, target, o.reason);
        print({ cancelled: s.deployId }, () => `cancel requested for deploy ${s.deployId} (${s.phase})\n`);
        return EXIT.ok;
      }
      case 'retry': {
        const s = await flui.retry(client, namespace, target);
        if (o.follow) return await followDeploy(client, namespace, target, s.deployId, Boolean(o.json), io);
        print({ retried: s.deployId }, () => `retrying deploy ${s.deployId} from ${s.failedPhase}\n`);
        return EXIT.ok;
      }
      case 'builds': {
        const builds = await flui.listBuilds(client, namespace, target, limit);
        print(builds, () =>
          builds.length
            ? table([
                ['DEPLOY', 'KIND', 'OUTCOME', 'COMMIT', 'DIGEST', 'DURATION', 'CI RUN'],
                ...builds.map((b) => [
                  b.deployId,
                  b.kind,
                  b.phase,
                  (b.commit ?? '-').slice(0, 12),
                  short(b.digest),
                  b.durationSeconds !== undefined ? `${b.durationSeconds}s` : 'running',
                  b.ciRun?.htmlUrl ?? '-',
                ]),
              ])
            : `no deploys of ${namespace}/${target} yet\n`,
        );
        return EXIT.ok;
      }
      case 'logs': {
        const builds = (await flui.listBuilds(client, namespace, target, Math.max(50, buildIndex))).filter(
          (b) => b.ciRun,
        );
        const build = builds[buildIndex - 1];
        if (!build?.ciRun)
          throw new flui.FluiError(`no CI run recorded for build ${buildIndex} of ${namespace}/${target}`);
        print(
          { deployId: build.deployId, ciRun: build.ciRun },
          () => `CI run of ${build.deployId}: ${build.ciRun!.htmlUrl}\n`,
        );
        return EXIT.ok;
      }
      case 'rollback': {
        const started = await flui.rollback(client, namespace, target, {
          digest: o.to,
          taskQueue: config.temporal.taskQueue,
          requestedBy: env.USER,
        });
        if (o.follow) return await followDeploy(client, namespace, target, started.deployId, Boolean(o.json), io);
        print(started, () => `rollback ${started.deployId} started for ${namespace}/${target}\n`);
        return EXIT.ok;
      }
    }
    return EXIT.usage;
  } catch (err) {
    if (err instanceof ManifestError) {
      io.err(`${err.message}\nNothing was deployed.\n`);
      return EXIT.usage;
    }
    if (err instanceof flui.FluiError) {
      io.err(`flui ${command}: ${err.message}\n`);
      return err.exitCode;
    }
    io.err(`flui ${command}: ${(err as Error).message}\n`);
    return EXIT.failed;
  } finally {
    await client?.connection.close().catch(() => undefined);
  }
}
