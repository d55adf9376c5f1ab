/**
 * Project webhooks with "Pipeline events": a POST on every pipeline status change, as GitLab sends them (GitLab docs,
 * "Webhook events" → Pipeline events, and "Webhooks" → delivery headers): `X-Gitlab-Event: Pipeline Hook`,
 * `X-Gitlab-Token` (the hook's secret token, in clear), `X-Gitlab-Event-UUID`, `X-Gitlab-Webhook-UUID`,
 * `X-Gitlab-Instance`, `User-Agent: GitLab/<version>`, and `Idempotency-Key` since 17.4 (the same on a retry).
 * Checked against GitLab's docs here: the event name, `X-Gitlab-Token` and the payload's fields (webhook_events.md;
 * `object_attributes.name` and `url` since 16.1). From memory, not confirmed in the docs available to this emulator:
 * `X-Gitlab-Webhook-UUID`, `X-Gitlab-Instance` and `Idempotency-Key`. GitLab's signed webhooks are not emulated.
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
   * GitLab's signing token (newer GitLab): deliveries then carry `webhook-id`, `webhook-timestamp` and
   * `webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`, the Standard Webhooks scheme GitLab's
   * docs describe. The key: the base64 after `whsec_` when the token has that prefix (Standard Webhooks' form),
   * otherwise the token's bytes — an assumption, as the docs available here do not say.
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

const uuid = (seed: string) => {
  const h = createHash('sha1').update(seed).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
};

export class Webhooks {
  readonly #target: WebhookTarget | undefined;
  readonly #faults: FaultState;
  readonly #records: Records;
  readonly #contract: ContractChecker | undefined;
  readonly #version: string;
  readonly #pending = new Set<Promise<unknown>>();
  /** Deliveries go out one after another, in the order the events happened. */
  #queue: Promise<unknown> = Promise.resolve();
  #failures = 0;
  #disabledUntil = 0;
  /** Every payload built (delivered or not), for tests. */
  readonly sent: { uuid: string; payload: unknown }[] = [];

  constructor(
    target: WebhookTarget | undefined,
    faults: FaultState,
    records: Records,
    version: string,
    contract?: ContractChecker,
  ) {
    this.#target = target;
    this.#faults = faults;
    this.#records = records;
    this.#version = version;
    this.#contract = contract;
  }

  pipelineChanged(base: string, project: Project, pipeline: Pipeline): void {
    if (!this.#target) return;
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
    const target = this.#target;
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'user-agent': `GitLab/${this.#version}`,
      'x-gitlab-event': 'Pipeline Hook',
      'x-gitlab-token': target.token,
      'x-gitlab-event-uuid': eventUuid,
      'x-gitlab-webhook-uuid': uuid(`hook:${project.id}`),
      'x-gitlab-instance': base,
      ...(atLeast(this.#version, '17.4') ? { 'idempotency-key': uuid(`idem:${eventUuid}`) } : {}),
    };
    const send = async () => {
      for (let i = 0; i < times; i++) {
        if (target.autoDisable && (this.#failures >= 40 || Date.now() < this.#disabledUntil)) {
          this.#records.webhooksSkippedDisabled++;
          continue;
        }
        this.#records.webhooksSent++;
        const signed: Record<string, string> = {};
        if (target.signingToken) {
          const timestamp = String(Math.floor(Date.now() / 1000));
          const key = target.signingToken.startsWith('whsec_')
            ? Buffer.from(target.signingToken.slice('whsec_'.length), 'base64')
            : Buffer.from(target.signingToken);
          const mac = createHmac('sha256', key).update(`${eventUuid}.${timestamp}.${body}`).digest('base64');
          Object.assign(signed, {
            'webhook-id': eventUuid,
            'webhook-timestamp': timestamp,
            'webhook-signature': `v1,${mac}`,
          });
        }
        const res = await fetch(target.url, {
          method: 'POST',
          headers: { ...headers, ...signed },
          body,
          signal: AbortSignal.timeout(10_000),
        }).catch(() => undefined);
        await res?.body?.cancel();
        if (res && res.status >= 200 && res.status < 300) {
          this.#failures = 0;
        } else if (++this.#failures >= 4) {
          const base = target.autoDisableBaseMs ?? 60_000;
          this.#disabledUntil = Date.now() + Math.min(base * 2 ** (this.#failures - 4), 24 * 3600_000);
        }
      }
    };
    const p = (this.#queue = this.#queue.then(send, send)).finally(() => this.#pending.delete(p));
    this.#pending.add(p);
  }

  async settle(): Promise<void> {
    await Promise.allSettled([...this.#pending]);
  }
}
