/**
 * Project webhooks with "Pipeline events": a POST on every pipeline status change, as GitLab sends them (GitLab docs,
 * "Webhook events" → Pipeline events, and "Webhooks" → delivery headers): `X-Gitlab-Event: Pipeline Hook`,
 * `X-Gitlab-Token` (the hook's secret token, in clear), `X-Gitlab-Event-UUID`, `X-Gitlab-Webhook-UUID`,
 * `X-Gitlab-Instance`, `User-Agent: GitLab/<version>`, and `Idempotency-Key` since 17.4 (the same on a retry).
 * Checked against GitLab's docs: the payload's fields (webhook_events.md; `object_attributes.name` and `url` since
 * 16.1) and the request headers (project_webhooks.md, the hook events example: `Idempotency-Key`, `X-Gitlab-Event`,
 * `X-Gitlab-Webhook-UUID`, `X-Gitlab-Instance`, `X-Gitlab-Event-UUID`, `X-Gitlab-Token`, `User-Agent`).
 *
 * Targets: the emulator's `webhook` option (a hook on every project), and the hooks a client adds with
 * `POST /projects/:id/hooks` and `pipeline_events: true`. Each has its own failure count for auto-disabling.
 * GitLab gives up on a delivery after its timeout and does not retry it; faults lose deliveries or deliver them
 * twice with the same UUID and idempotency key, as a retried delivery has. Every payload is checked against the
 * webhook's JSON Schema (contract.ts).
 */
import { createHash, createHmac } from 'node:crypto';
import type { ContractChecker } from './contract.ts';
import type { FaultState } from './faults.ts';
import type { Records } from './records.ts';
import { atLeast, pipelineEvent } from './shapes.ts';
import type { Pipeline, Project } from './store.ts';

export interface WebhookTarget {
  url: string;
  token: string;
  /**
   * GitLab's signing token (newer GitLab, behind the `webhook_signing_token` feature flag): deliveries then carry
   * `webhook-id`, `webhook-timestamp` (Unix seconds) and `webhook-signature: v1,<base64 HMAC-SHA256 of
   * "<webhook-id>.<timestamp>.<body>">`, the Standard Webhooks scheme. Checked against GitLab's merge requests adding
   * it (!230944, !231325): the signed string and the `v1,<base64>` form; `webhook-id` is the delivery's
   * `Idempotency-Key` (so per hook, and the same on a retry); GitLab accepts the token only as `whsec_` + base64 of a
   * 32-byte key (the emulator refuses any other, as GitLab's API does), and the merge request checks deliveries with
   * the Standard Webhooks library, whose HMAC key is those decoded bytes. Assumed: one signature per header, and the
   * GitLab version it appeared in (signed deliveries are sent whatever `version` says, `webhook-id` included).
   */
  signingToken?: string;
  /**
   * GitLab.com's auto-disabling (webhooks docs, "Auto-disabled webhooks", checked): after 4 consecutive failed
   * deliveries (a non-2xx answer, a timeout, a connection error) the hook is temporarily disabled for one minute
   * (`autoDisableBaseMs`), doubling on each further failure up to 24 hours; after 40 it is disabled for good.
   * Deliveries while disabled are skipped. Off by default (self-managed GitLab has it behind a feature flag).
   */
  autoDisable?: boolean;
  autoDisableBaseMs?: number;
}

/** The HMAC key of a signing token GitLab accepts (`whsec_` + base64 of 32 bytes), or undefined. */
function signingKey(token: string): Buffer | undefined {
  const m = /^whsec_([A-Za-z0-9+/]{43}=)$/.exec(token);
  const key = m && Buffer.from(m[1]!, 'base64');
  return key?.length === 32 ? key : undefined;
}

const uuid = (seed: string) => {
  const h = createHash('sha1').update(seed).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
};

/** A hook's delivery health (kept on the hook, so a project hook's survives a restart). */
export interface HookHealth {
  failures: number;
  disabledUntil: number;
}

/** GitLab's `alert_status` of a hook: `executable`, `temporarily_disabled` or `disabled`. */
export function alertStatus(target: Pick<WebhookTarget, 'autoDisable'>, health: HookHealth): string {
  if (!target.autoDisable) return 'executable';
  if (health.failures >= 40) return 'disabled';
  return Date.now() < health.disabledUntil ? 'temporarily_disabled' : 'executable';
}

export class Webhooks {
  readonly #global: (WebhookTarget & { health: HookHealth }) | undefined;
  readonly #faults: FaultState;
  readonly #records: Records;
  readonly #contract: ContractChecker | undefined;
  readonly #version: string;
  readonly #pending = new Set<Promise<unknown>>();
  /** Deliveries go out one after another, in the order the events happened. */
  #queue: Promise<unknown> = Promise.resolve();
  /** Every payload built (delivered or not), for tests. */
  readonly sent: { uuid: string; payload: unknown }[] = [];

  constructor(
    target: WebhookTarget | undefined,
    faults: FaultState,
    records: Records,
    version: string,
    contract?: ContractChecker,
  ) {
    if (target?.signingToken !== undefined && !signingKey(target.signingToken)) {
      throw new Error(
        'webhook.signingToken must be whsec_ followed by the base64 of a 32-byte key, as GitLab requires',
      );
    }
    this.#global = target ? { ...target, health: { failures: 0, disabledUntil: 0 } } : undefined;
    this.#faults = faults;
    this.#records = records;
    this.#version = version;
    this.#contract = contract;
  }

  pipelineChanged(base: string, project: Project, pipeline: Pipeline): void {
    const targets: { key: string; target: WebhookTarget; health: HookHealth }[] = [];
    if (this.#global) targets.push({ key: 'global', target: this.#global, health: this.#global.health });
    for (const hook of project.hooks ?? []) {
      if (!hook.pipelineEvents) continue;
      targets.push({
        key: `hook:${hook.id}`,
        target: {
          url: hook.url,
          token: hook.token ?? '',
          autoDisable: this.#global?.autoDisable ?? false,
          autoDisableBaseMs: this.#global?.autoDisableBaseMs,
        },
        health: hook.health,
      });
    }
    if (!targets.length) return;
    const payload = pipelineEvent(base, project, pipeline);
    this.#contract?.checkWebhook('Pipeline Hook', payload);
    const eventUuid = uuid(`pipeline:${pipeline.id}:${pipeline.revision}:${pipeline.status}`);
    this.sent.push({ uuid: eventUuid, payload });
    const times = this.#faults.takeWebhook();
    if (times === 0) {
      this.#records.webhooksDropped++;
      return;
    }
    const body = JSON.stringify(payload);
    const send = async () => {
      for (const { key, target, health } of targets) {
        const idempotencyKey = uuid(`idem:${key}:${eventUuid}`);
        const headers: Record<string, string> = {
          'content-type': 'application/json',
          'user-agent': `GitLab/${this.#version}`,
          'x-gitlab-event': 'Pipeline Hook',
          ...(target.token ? { 'x-gitlab-token': target.token } : {}),
          'x-gitlab-event-uuid': eventUuid,
          'x-gitlab-webhook-uuid': uuid(`${key}:${project.id}`),
          'x-gitlab-instance': base,
          ...(atLeast(this.#version, '17.4') ? { 'idempotency-key': idempotencyKey } : {}),
        };
        for (let i = 0; i < times; i++) await this.#deliver(target, health, headers, body, idempotencyKey);
      }
    };
    const p = (this.#queue = this.#queue.then(send, send)).finally(() => this.#pending.delete(p));
    this.#pending.add(p);
  }

  /** `id` is the delivery's Idempotency-Key, sent as `webhook-id` when signed. */
  async #deliver(target: WebhookTarget, health: HookHealth, headers: Record<string, string>, body: string, id: string) {
    if (alertStatus(target, health) !== 'executable') {
      this.#records.webhooksSkippedDisabled++;
      return;
    }
    this.#records.webhooksSent++;
    const signed: Record<string, string> = {};
    if (target.signingToken) {
      const timestamp = String(Math.floor(Date.now() / 1000));
      const mac = createHmac('sha256', signingKey(target.signingToken)!)
        .update(`${id}.${timestamp}.${body}`)
        .digest('base64');
      Object.assign(signed, { 'webhook-id': id, 'webhook-timestamp': timestamp, 'webhook-signature': `v1,${mac}` });
    }
    const res = await fetch(target.url, {
      method: 'POST',
      headers: { ...headers, ...signed },
      body,
      signal: AbortSignal.timeout(10_000),
    }).catch(() => undefined);
    await res?.body?.cancel();
    if (res && res.status >= 200 && res.status < 300) {
      health.failures = 0;
      health.disabledUntil = 0;
    } else if (++health.failures >= 4) {
      const baseMs = target.autoDisableBaseMs ?? 60_000;
      health.disabledUntil = Date.now() + Math.min(baseMs * 2 ** (health.failures - 4), 24 * 3600_000);
    }
  }

  async settle(): Promise<void> {
    await Promise.allSettled([...this.#pending]);
  }
}
