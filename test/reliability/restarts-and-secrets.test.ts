/**
 * Reliability on real servers: the Temporal server restarts in the middle of a build; webhooks are lost or
 * duplicated; rate limits are exhausted mid-deploy; and after all of it, no secret appears in any workflow history,
 * memo, search attribute or server log.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { startDeploy, status } from '../../src/client/index.ts';
import { startDevServer, type DevServer } from '../../dev/temporal.ts';
import type { DeployOutcome } from '../../src/workflows/contract.ts';
import { assertContract } from '../helpers/github-emulator.ts';
import { ciJobLogs, scanForSecrets } from '../helpers/secrets.ts';
import { createApplication, eventually, useStack } from '../helpers/stack.ts';

describe('reliability', () => {
  const stack = useStack({ persistTemporal: true, ports: { ui: false } });
  after(() => assertContract(stack().github!));
  let restarted: DevServer | undefined;
  after(() => restarted?.stop());

  it('completes a deploy across a Temporal server restart in the middle of the build', async () => {
    const s = stack();
    const app = await createApplication(s);
    s.github!.faults.keepQueued(true);
    const { workflowId } = await startDeploy(s.client, app, { taskQueue: s.config.temporal.taskQueue });
    await eventually(
      async () =>
        (await status(s.client, 'default', app.metadata.name).catch(() => undefined))?.phase === 'building'
          ? true
          : undefined,
      60_000,
      'building',
    );
    const server = s.temporal!;
    await server.stop();
    s.github!.faults.keepQueued(false); // the build finishes while Temporal is down; its webhook is lost
    restarted = await startDevServer({ ...server.options, logDir: s.dataDir });
    const outcome = (await s.client.workflow.getHandle(workflowId).result()) as DeployOutcome;
    assert.equal(outcome.phase, 'succeeded');
    assert.equal(s.github!.records.dispatches[app.spec.source.repository], 1, 'one CI run');
  });

  it('completes with lost and duplicated webhooks and through an exhausted rate limit', async () => {
    const s = stack();
    for (const faults of [{ drop: 5 }, { duplicate: 5 }]) {
      const app = await createApplication(s);
      s.github!.faults.webhooks(faults);
      const { workflowId } = await startDeploy(s.client, app, { taskQueue: s.config.temporal.taskQueue });
      assert.equal(((await s.client.workflow.getHandle(workflowId).result()) as DeployOutcome).phase, 'succeeded');
      s.github!.faults.reset();
    }
    const app = await createApplication(s);
    s.github!.faults.exhaustRateLimit({ forMs: 4000 });
    const { workflowId } = await startDeploy(s.client, app, { taskQueue: s.config.temporal.taskQueue });
    assert.equal(((await s.client.workflow.getHandle(workflowId).result()) as DeployOutcome).phase, 'succeeded');
    assert.ok(
      s.github!.records.requestsOverLimit <= 3,
      `${s.github!.records.requestsOverLimit} requests while the limit said 0 (only the first discovery of each call)`,
    );
  });

  it('leaves no secret in histories, memos, search attributes or server logs', async () => {
    const s = stack();
    const secrets = [s.env.REGISTRY_PASSWORD!, s.env.GITHUB_TOKEN!, s.env.GITHUB_WEBHOOK_SECRET!];
    const scan = await scanForSecrets(
      s.client,
      secrets,
      [join(s.dataDir, 'registry', 'registry.log'), s.temporal!.process.logFile],
      ciJobLogs(s.github!),
    );
    process.stdout.write(
      `# secret scan: ${scan.workflows} workflows, ${scan.events} events, ${scan.logFiles} logs, ${scan.texts} CI job logs, ${scan.bytes} bytes, ${scan.hits.length} hits\n`,
    );
    assert.ok(scan.workflows >= 4 && scan.events > 50, 'the scan saw the deploys');
    assert.ok(scan.texts >= 1, 'the scan saw the CI job logs');
    assert.deepEqual(scan.hits, []);
  });
});
