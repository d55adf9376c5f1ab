/**
 * The one translation from the adapters' service errors to Temporal failures: which kinds are permanent, which
 * failure type each gets, and that a named wait and a caller's details survive it. No servers.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApplicationFailure, CancelledFailure } from '@temporalio/activity';
import { toActivityFailure, withActivityFailures } from '../../src/activities/failures.ts';
import { ServiceError, type ServiceErrorKind } from '../../src/errors.ts';
import { FailureType } from '../../src/workflows/contract.ts';

function translated(kind: ServiceErrorKind, more: Partial<ConstructorParameters<typeof ServiceError>[0]> = {}) {
  const f = toActivityFailure(new ServiceError({ service: 'GitHub', kind, message: 'it went wrong', ...more }));
  assert.ok(f instanceof ApplicationFailure);
  return f;
}

describe('toActivityFailure', () => {
  it('makes the permanent kinds non-retryable failures of the contract, with the hint in the message', () => {
    const cases: [ServiceErrorKind, string][] = [
      ['unauthorized', FailureType.Unauthorized],
      ['not-found', FailureType.NotFound],
      ['invalid', FailureType.Invalid],
      ['misconfigured', FailureType.Misconfigured],
    ];
    for (const [kind, type] of cases) {
      const f = translated(kind, { hint: 'check GITHUB_TOKEN', retryAfterSeconds: 30 });
      assert.deepEqual([f.type, f.nonRetryable, f.nextRetryDelay], [type, true, undefined], kind);
      assert.equal(f.message, 'it went wrong: check GITHUB_TOKEN');
    }
    // Every permanent type is one the workflow's retry policy refuses to retry.
    assert.ok(cases.every(([, type]) => (Object.values(FailureType) as string[]).includes(type)));
  });

  it('keeps the transient kinds retryable, named after the service, after the wait the service asked for', () => {
    const rateLimited = translated('rate-limited', { retryAfterSeconds: 90 });
    assert.deepEqual(
      [rateLimited.type, rateLimited.nonRetryable, rateLimited.nextRetryDelay],
      ['GitHubRateLimited', false, '90 seconds'],
    );
    const down = translated('unavailable');
    assert.deepEqual([down.type, down.nonRetryable, down.nextRetryDelay], ['GitHubUnavailable', false, undefined]);
    assert.equal(translated('conflict').type, 'GitHubConflict');
    assert.equal(translated('conflict').nonRetryable, false);
  });

  it('carries details a caller acts on, and nothing of the cause', () => {
    const cause = Object.assign(new Error('HTTP 401'), { request: { headers: { authorization: 'token s3cret' } } });
    const f = translated('invalid', { details: { pullRequestUrl: 'https://example.test/pull/1' }, cause });
    assert.deepEqual(f.details, [{ pullRequestUrl: 'https://example.test/pull/1' }]);
    assert.equal(f.cause, undefined);
    assert.doesNotMatch(JSON.stringify(f), /s3cret/);
  });

  it('leaves Temporal failures and unknown errors as they are', () => {
    const failure = ApplicationFailure.nonRetryable('rolled back', FailureType.RolloutFailed);
    const cancelled = new CancelledFailure('cancelled');
    const unknown = new TypeError('fetch failed');
    for (const err of [failure, cancelled, unknown]) assert.equal(toActivityFailure(err), err);
  });
});

describe('withActivityFailures', () => {
  it('translates what every activity throws, and passes results and arguments through', async () => {
    const activities = withActivityFailures({
      async echo(a: number, b: string) {
        return `${a}${b}`;
      },
      async refuse(): Promise<never> {
        throw new ServiceError({ service: 'Registry', kind: 'unauthorized', message: 'refused' });
      },
    });
    assert.equal(await activities.echo(1, 'x'), '1x');
    assert.equal(activities.refuse.name, 'refuse', 'the activity keeps its name');
    await assert.rejects(
      activities.refuse(),
      (err: unknown) => err instanceof ApplicationFailure && err.type === 'Unauthorized' && err.nonRetryable,
    );
  });
});
