/**
 * What the push-credential tests of every CI backend share: two real registries (one with a password, opted in as
 * `static`; one in token mode trusting Flui's certificate, `minted-token`), the worker settings naming them, one
 * deploy's CI part run through the CI activities as the workflow runs them, and the checks of a minted token (its
 * claims; refused for another app's repository).
 */
import assert from 'node:assert/strict';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { pushImage } from '@flui/github-emulator/registry-push';
import { makeTempDir } from '../../dev/process.ts';
import { createCiActivities } from '../../src/activities/ci.ts';
import { withActivityFailures } from '../../src/activities/failures.ts';
import type { CiBackend } from '../../src/ci/backend.ts';
import type { Config } from '../../src/config.ts';
import { validateManifest } from '../../src/manifest/parse.ts';
import type { Application } from '../../src/manifest/schema.ts';
import type { CiRunRef, CiRunResult } from '../../src/workflows/contract.ts';
import { REGISTRY_PASSWORD, REGISTRY_USER, useRegistry } from './registry.ts';
import { eventually } from './stack.ts';
import { makeSigningFiles, useTokenRegistry, type TokenRegistry } from './token-registry.ts';

/** The static credential of the password registry. */
export const PUSH_CREDENTIALS = { username: REGISTRY_USER, password: REGISTRY_PASSWORD };

/** Flui's token signing key and certificate, as files. */
export async function fluiSigningFiles(): Promise<{ keyFile: string; certificateFile: string }> {
  return makeSigningFiles(await makeTempDir('push-credentials'), 'flui-push', 'rsa');
}

/** The two registries of a suite: `password` (htpasswd) and `token` (token mode, trusting `flui`'s certificate). */
export function usePushRegistries(flui: { certificateFile: string }) {
  return {
    password: useRegistry({ auth: true }),
    token: useTokenRegistry({ username: 'nobody', password: 'unused' }, { trust: () => [flui.certificateFile] }),
  };
}

/** The token registry's entry of FLUI_REGISTRY_PUSH: Flui mints tokens for it. */
export function mintedTokenSetting(
  token: TokenRegistry,
  flui: { keyFile: string; certificateFile: string },
  maxTokenMinutes = 15,
) {
  return {
    [token.host]: {
      method: 'minted-token',
      issuer: token.issuer,
      service: token.service,
      ...flui,
      maxTokenMinutes,
    },
  };
}

/** Worker settings for both registries: the password one as `static`, the token one as `minted-token`. */
export function pushSettingsEnv(
  registries: { password: { host: string }; token: TokenRegistry },
  flui: { keyFile: string; certificateFile: string },
): Record<string, string> {
  return {
    REGISTRY_USERNAME: PUSH_CREDENTIALS.username,
    REGISTRY_PASSWORD: PUSH_CREDENTIALS.password,
    REGISTRY_HOST: registries.password.host,
    FLUI_REGISTRY_PUSH: JSON.stringify({
      [registries.password.host]: { method: 'static' },
      ...mintedTokenSetting(registries.token, flui),
    }),
  };
}

export function pushApp(name: string, repository: string, image: string): Application {
  return validateManifest({
    apiVersion: 'flui.dev/v1',
    kind: 'Application',
    metadata: { name },
    spec: { source: { repository }, image: { repository: image }, deploy: { buildTimeoutMinutes: 20 } },
  }) as Application;
}

/**
 * One deploy's CI part, as the workflow runs it (ensureWorkflowFile and ensureRegistryCredential, then triggerRun,
 * then the run's status until it completed), through the CI activities on `ci`.
 */
export function ciDeployer(ci: CiBackend, config: Pick<Config, 'registry'>) {
  const activities = withActivityFailures(createCiActivities(ci, config));
  const env = new MockActivityEnvironment(undefined, { logger: new DefaultLogger('ERROR') });
  return async (a: Application, runKey: string) => {
    const prepare = () =>
      Promise.all([activities.ensureWorkflowFile({ app: a }), activities.ensureRegistryCredential({ app: a })]);
    const [file, credential] = (await env.run(prepare)) as Awaited<ReturnType<typeof prepare>>;
    const run = (await env.run(() => activities.triggerRun({ runKey, app: a }))) as CiRunRef;
    const done: CiRunResult = await eventually(
      async () => {
        const s = await ci.status(a, run);
        return s.status?.state === 'completed' ? s.status.result : undefined;
      },
      30_000,
      `run ${run.id} to complete`,
    );
    return { file, credential, run, done };
  };
}

/** The claims of a token Flui minted for `app` (whose image is `<host>/acme/<name>`), checked. */
export function assertMintedClaims(token: string, app: Application, ttlSeconds: number): void {
  assert.match(token, /^ey[\w-]+\.[\w-]+\.[\w-]+$/);
  const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as {
    exp: number;
    iat: number;
    sub: string;
    access: { name: string; actions: string[] }[];
  };
  assert.deepEqual(claims.access, [
    { type: 'repository', name: `acme/${app.metadata.name}`, actions: ['push', 'pull'] },
  ]);
  assert.equal(claims.sub, `flui:default.${app.metadata.name}`);
  assert.equal(claims.exp - claims.iat, ttlSeconds);
}

/** The registry refuses `token` for pushing to `imageRepository` (another app's). */
export async function assertTokenRefused(token: string, imageRepository: string): Promise<void> {
  await assert.rejects(
    pushImage(`${imageRepository}:replaced`, { files: { a: 'b' }, bearerToken: token }),
    /refused the token/,
  );
}
