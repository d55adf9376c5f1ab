/**
 * Project webhooks with "Pipeline events": a POST on every pipeline status change, as GitLab sends them (GitLab docs,
 * "Webhook events" → Pipeline events, and "Webhooks" → delivery headers): `X-Gitlab-Event: Pipeline Hook`,
 * `X-Gitlab-Token` (the hook's secret token, in clear), `X-Gitlab-Event-UUID`, `X-Gitlab-Webhook-UUID`,
 * `X-Gitlab-Instance`, `User-Agent: GitLab/<version>`, and `Idempotency-Key` since 17.4 (the same on a retry).
 * GitLab gives up on a delivery after its timeout and does not retry it; faults lose deliveries or deliver them
 * twice with the same UUID and idempotency key, as a retried delivery has. Every payload is checked against the
 * webhook's JSON Schema (contract.ts).
 */
import { createHash } from 'node:crypto';
import type { ContractChecker } from './contract.ts';
import type { FaultState } from './faults.ts';
import type { Records } from './records.ts';
import { atLeast, pipelineEvent } from './shapes.ts';
import type { Pipeline, Project } from './store.ts';

export interface WebhookTarget {
  url: string;
  token: string;
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
        this.#records.webhooksSent++;
        const res = await fetch(target.url, {
          method: 'POST',
          headers,
          body,
          signal: AbortSignal.timeout(10_000),
        }).catch(() => undefined);
        await res?.body?.cancel();
      }
    };
    // Deliveries of one pipeline keep their order, as GitLab's per-hook queue mostly does.
    const p = send().finally(() => this.#pending.delete(p));
    this.#pending.add(p);
  }

  async settle(): Promise<void> {
    await Promise.allSettled([...this.#pending]);
  }
}
