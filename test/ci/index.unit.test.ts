import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApplicationFailure } from '@temporalio/activity';
import { toActivityFailure } from '../../src/activities/failures.ts';
import { createCiBackend } from '../../src/ci/index.ts';
import { loadConfig } from '../../src/config.ts';
import { ServiceError } from '../../src/errors.ts';
import { validateManifest } from '../../src/manifest/parse.ts';
import type { Application } from '../../src/manifest/schema.ts';

describe('createCiBackend', () => {
  it('chooses GitHub Actions, and a worker without GitHub credentials fails only when a build needs them', async () => {
    const ci = createCiBackend(loadConfig({}));
    assert.equal(ci.name, 'github-actions');
    const app = validateManifest({
      apiVersion: 'flui.dev/v1',
      kind: 'Application',
      metadata: { name: 'hello' },
      spec: { source: { repository: 'acme/hello' }, image: { repository: 'ghcr.io/acme/hello' } },
    }) as Application;
    await assert.rejects(
      ci.ensurePipeline(app, { push: { method: 'github-token', registry: 'ghcr.io' } }),
      (err: unknown) => {
        assert.ok(err instanceof ServiceError && err.kind === 'misconfigured', String(err));
        const failure = toActivityFailure(err);
        return (
          failure instanceof ApplicationFailure &&
          failure.nonRetryable &&
          failure.type === 'Misconfigured' &&
          /GITHUB_TOKEN/.test(failure.message)
        );
      },
    );
  });
});
