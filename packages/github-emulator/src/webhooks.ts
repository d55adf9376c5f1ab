/**
 * `workflow_run` webhooks, delivered as GitHub does when a run completes: a POST with `X-GitHub-Event`,
 * `X-GitHub-Delivery` and `X-Hub-Signature-256: sha256=<HMAC-SHA256 hex of the body>` (none when the hook has no
 * secret, as on GitHub). Like GitHub, a failed delivery is not retried; faults lose deliveries or deliver them twice
 * (the same delivery id, as GitHub's "Redeliver" does). Every payload is checked against GitHub's webhook schema.
 */
import { createHash } from 'node:crypto';
import { sign } from '@octokit/webhooks-methods';
import type { ContractChecker } from './contract.ts';
import type { FaultState } from './faults.ts';
import type { Records } from './records.ts';
import { fullRepo, user, webhookRun, workflow } from './shapes.ts';
import type { Repo, Run } from './store.ts';

export interface WebhookTarget {
  url: string;
  secret: string;
}

/** A GUID per run attempt, so a duplicate carries the same id as the original, as a redelivery does. */
function deliveryId(run: Run): string {
  const h = createHash('sha1').update(`workflow_run:${run.id}:${run.attempt}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

export class Webhooks {
  readonly #target: WebhookTarget | undefined;
  readonly #faults: FaultState;
  readonly #records: Records;
  readonly #contract: ContractChecker | undefined;
  readonly #pending = new Set<Promise<unknown>>();

  constructor(target: WebhookTarget | undefined, faults: FaultState, records: Records, contract?: ContractChecker) {
    this.#target = target;
    this.#faults = faults;
    this.#records = records;
    this.#contract = contract;
  }

  /** Delivers `workflow_run` `completed` for `run` (in the background). */
  runCompleted(api: string, repo: Repo, run: Run): void {
    if (!this.#target) return;
    const payload = {
      action: 'completed',
      workflow_run: webhookRun(api, repo, run),
      workflow: workflow(api, repo, run.workflowId, run.workflowPath, run.workflowName),
      repository: fullRepo(api, repo),
      sender: user(api, 'flui-bot', 1),
    };
    this.#contract?.checkWebhook('workflow-run-completed', payload);
    const times = this.#faults.takeWebhook();
    if (times === 0) {
      this.#records.webhooksDropped++;
      return;
    }
    const body = JSON.stringify(payload);
    const target = this.#target;
    const send = async () => {
      const signature: Record<string, string> = target.secret
        ? { 'x-hub-signature-256': await sign(target.secret, body) }
        : {};
      for (let i = 0; i < times; i++) {
        this.#records.webhooksSent++;
        const res = await fetch(target.url, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'user-agent': 'GitHub-Hookshot/emulator',
            'x-github-event': 'workflow_run',
            'x-github-delivery': deliveryId(run),
            'x-github-hook-id': '1',
            ...signature,
          },
          body,
          signal: AbortSignal.timeout(10_000), // GitHub gives up after 10 s too
        }).catch(() => undefined);
        await res?.body?.cancel();
      }
    };
    const p = send().finally(() => this.#pending.delete(p));
    this.#pending.add(p);
  }

  /** Waits for deliveries in flight (stop). */
  async settle(): Promise<void> {
    await Promise.allSettled([...this.#pending]);
  }
}
