/**
 * What both emulators' control APIs (`/_emulator/...`, JSON in and out) share: the refusal of a bad request, the
 * checks of a request's body with one sentence per problem (`"count" must be a number ≥ 0`), and the faults every
 * emulator injects the same way.
 */
import { z } from 'zod';

export class BadRequest extends Error {
  readonly status: number;
  constructor(message: string, status = 422) {
    super(message);
    this.status = status;
  }
}

/** `"<field>" <phrase>`: what every refusal of a control body says. */
export const says = (phrase: string) => ({
  error: (issue: z.core.$ZodRawIssue) => `"${String(issue.path?.[0])}" ${phrase}`,
});
export const text = z.string(says('must be a non-empty string')).min(1, says('must be a non-empty string'));
export const count = z.number(says('must be a number ≥ 0')).min(0, says('must be a number ≥ 0'));
export const on = z.boolean(says('must be true or false'));
export const files = z.record(
  z.string(),
  z.string(says('must map paths to strings')),
  says('must map paths to strings'),
);

/** `body` as `schema` reads it, or a `BadRequest` (422) with the first problem. */
export function parse<S extends z.ZodType>(schema: S, body: unknown): z.output<S> {
  const parsed = schema.safeParse(body);
  if (!parsed.success) throw new BadRequest(parsed.error.issues[0]!.message);
  return parsed.data;
}

/** The request's JSON object (empty for no body), or a `BadRequest` (400) saying `notJson` or that it is no object. */
export function jsonObject(raw: Buffer, notJson: string): Record<string, unknown> {
  if (!raw.length) return {};
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(raw.toString('utf8')) as Record<string, unknown>;
  } catch {
    throw new BadRequest(notJson, 400);
  }
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw new BadRequest('expected a JSON object', 400);
  return body;
}

/** The faults whose control bodies both emulators read the same way. */
export interface CommonFaults {
  latency(ms: number): void;
  runnerCapacity(count: number): void;
  failBuilds(count: number): void;
  webhooks(opts: { drop?: number; duplicate?: number }): void;
  reset(): void;
}

const countBody = z.object({ count });

/**
 * `POST /faults/<name>` operations (keys `POST /faults/...`) that act on `faults` with the request's body; each
 * emulator adds its own (outage modes, rate limits) to these.
 */
export function commonFaultOperations(faults: CommonFaults): Record<string, (body: unknown) => void> {
  return {
    'POST /faults/latency': (body) => faults.latency(parse(z.object({ ms: count }), body).ms),
    'POST /faults/runner-capacity': (body) => faults.runnerCapacity(parse(countBody, body).count),
    'POST /faults/fail-builds': (body) => faults.failBuilds(parse(countBody, body).count),
    'POST /faults/webhooks': (body) =>
      faults.webhooks(parse(z.object({ drop: count.optional(), duplicate: count.optional() }), body)),
    'POST /faults/reset': () => faults.reset(),
  };
}
