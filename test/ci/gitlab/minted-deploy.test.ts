/**
 * A deploy through GitLab CI pushing to a registry in token mode with a token Flui mints per deploy, end to end on
 * real servers: Temporal, kwok, the GitLab emulator (whose runner pushes with skopeo's Bearer token) and a real
 * registry in token mode that trusts Flui's certificate; the worker itself reads the registry through its token
 * service with its own credential. The deploy pushes and rolls out; each deploy writes a new token, which appears in
 * no history, no worker log and no job trace.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { startDeploy } from '../../../src/client/index.ts';
import { pushVariableNames } from '../../../src/ci/gitlab/pipeline-file.ts';
import { kubeClients } from '../../../src/kube/rollout.ts';
import type { DeployOutcome } from '../../../src/workflows/contract.ts';
import { startLocalStack } from '../../../dev/stack.ts';
import { makeTempDir } from '../../../dev/process.ts';
import { gitlabJobTraces, scanForSecrets } from '../../helpers/secrets.ts';
import { assertMintedClaims, fluiSigningFiles, mintedTokenSetting } from '../../helpers/push-credentials.ts';
import { createApplication } from '../../helpers/stack.ts';
import { useServer } from '../../helpers/suite.ts';
import { workerWorkflowBundle } from '../../helpers/temporal.ts';
import { startTokenRegistry } from '../../helpers/token-registry.ts';

const flui = await fluiSigningFiles();
const workerCredential = { username: 'flui-worker', password: 'worker-reads-the-registry-7d1e' };

describe('deploy through GitLab CI with a token minted per deploy', () => {
  const fixture = useServer(async () => {
    const registry = await startTokenRegistry(workerCredential, { trust: [flui.certificateFile] });
    try {
      // The worker's own credential for the registry, sent to its token service (another origin) only.
      const authFile = join(await makeTempDir('minted-deploy'), 'auth.json');
      await writeFile(
        authFile,
        JSON.stringify({ auths: { [registry.host]: { ...workerCredential, realms: [registry.realm] } } }),
      );
      const stack = await startLocalStack({
        ci: 'gitlab',
        runner: { queuedMs: 100, buildMs: 500 },
        workflowBundle: await workerWorkflowBundle(),
        configured: {
          REGISTRY_USERNAME: workerCredential.username,
          REGISTRY_PASSWORD: workerCredential.password,
          REGISTRY_HOST: registry.host,
          FLUI_REGISTRY_PUSH: JSON.stringify(mintedTokenSetting(registry, flui)),
        },
        env: { REGISTRY_AUTH_FILE: authFile },
      });
      return {
        registry,
        stack,
        async stop() {
          await stack.stop();
          await registry.stop();
        },
      };
    } catch (err) {
      await registry.stop();
      throw err;
    }
  });
  afterEach(() => {
    assert.deepEqual(fixture().stack.gitlab!.contract.violations, [], 'GitLab emulator responses match the contract');
  });

  it('pushes with the minted token and rolls out; a new token per deploy, none of them in any history or log', async () => {
    const { stack: s, registry } = fixture();
    const gl = s.gitlab!;
    const app = await createApplication(s);
    const repo = app.spec.source.repository;
    const names = pushVariableNames(app);
    const tokens: string[] = [];
    const deploy = async () => {
      const { workflowId } = await startDeploy(s.client, app, { taskQueue: s.config.temporal.taskQueue });
      const outcome = (await s.client.workflow.getHandle(workflowId).result()) as DeployOutcome;
      tokens.push(gl.variableValue(repo, names.token)!);
      return outcome;
    };

    const outcome = await deploy();
    assert.equal(outcome.phase, 'succeeded', JSON.stringify(outcome));
    const [pipeline] = gl.pipelines(repo);
    assert.equal(outcome.digest, pipeline!.digest);
    assert.equal(outcome.image, `${app.spec.image.repository}@${pipeline!.digest}`);
    const k = kubeClients(s.env.KUBECONFIG);
    const d = await k.apps.readNamespacedDeployment({ name: app.metadata.name, namespace: 'default' });
    assert.equal(d.spec?.template.spec?.containers[0]?.image, outcome.image);
    assertMintedClaims(tokens[0]!, app, 15 * 60);
    const variable = gl.variables(repo).find((v) => v.key === names.token);
    assert.ok(variable?.masked && variable.hidden, 'the token is masked and hidden');
    assert.equal(gl.variables(repo).filter((v) => v.key !== names.token).length, 0, 'nothing else stored: no password');
    assert.ok(registry.tokens.issued > 0, "the worker read the registry through its token service, the job didn't");

    const writes = gl.records.variableWrites[repo]!;
    const again = await deploy();
    assert.equal(again.phase, 'succeeded');
    assert.equal(gl.records.variableWrites[repo], writes + 1, 'one write per deploy: its token');
    assert.notEqual(tokens[1], tokens[0]);
    assert.equal(gl.records.pipelinesCreated[repo], 2, 'one pipeline per deploy');

    const traces = gitlabJobTraces(gl);
    assert.ok(
      traces.some((t) => / as sha256:/.test(t.text)),
      'the job traces were read',
    );
    const scan = await scanForSecrets(
      s.client,
      [...tokens, workerCredential.password, s.env.GITLAB_TOKEN!, s.env.GITLAB_WEBHOOK_SECRET!],
      [],
      traces,
    );
    assert.ok(scan.workflows > 0 && scan.events > 0 && scan.texts > 0);
    assert.deepEqual(scan.hits, []);
  });
});
