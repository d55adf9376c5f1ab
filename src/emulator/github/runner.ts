/**
 * The simulated Actions runner. Runs live like real ones (queued → in_progress → completed) and do real work: the
 * runner reads the dispatched workflow file at the run's commit, requires what Flui's generated workflow must hold
 * (a registry login with secrets, a build-and-push of `<repository>:${{ github.sha }}`), decrypts the secrets with
 * the repository's private key, builds a small OCI image from the repository's files at that commit, and pushes it
 * to the registry named in the workflow with that credential. A wrong credential fails the push with the registry's
 * 401 and the run with it, as on GitHub.
 */
import sodium from 'libsodium-wrappers';
import { parse } from 'yaml';
import { pushImage } from '../../registry/oci.ts';
import { now, type Repo, type Run, type Store } from './store.ts';

export interface RunnerOptions {
  queuedMs: number;
  buildMs: number;
  insecureHosts: string[];
}

export interface RunnerFaults {
  /** Runs stay queued while this is set. */
  keepQueued: boolean;
  /** The next N builds fail (after doing nothing). */
  failBuilds: number;
}

interface Step {
  uses?: string;
  with?: Record<string, unknown>;
}

/** What Flui's generated workflow tells the runner to do, extracted tolerantly from the YAML. */
export interface BuildPlan {
  registry: string;
  usernameSecret: string;
  passwordSecret: string;
  tags: string[];
  context: string;
}

const SECRET_REF = /^\$\{\{\s*secrets\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}$/;

/** Parses a workflow file. `dispatchInputs` lists the workflow_dispatch inputs (undefined: no such trigger). */
export function readWorkflow(text: string): {
  name?: string;
  runName?: string;
  dispatchInputs?: Record<string, { required?: boolean }>;
  steps: Step[];
} {
  const doc = (parse(text) ?? {}) as Record<string, unknown>;
  const on = doc.on ?? doc.true; // YAML 1.1 parsers read a bare `on` as true
  let dispatchInputs: Record<string, { required?: boolean }> | undefined;
  if (on && typeof on === 'object' && 'workflow_dispatch' in on) {
    const wd = (on as Record<string, { inputs?: Record<string, { required?: boolean }> } | null>).workflow_dispatch;
    dispatchInputs = wd?.inputs ?? {};
  } else if (on === 'workflow_dispatch' || (Array.isArray(on) && on.includes('workflow_dispatch'))) {
    dispatchInputs = {};
  }
  const jobs = Object.values((doc.jobs ?? {}) as Record<string, { steps?: Step[] }>);
  return {
    name: typeof doc.name === 'string' ? doc.name : undefined,
    runName: typeof doc['run-name'] === 'string' ? doc['run-name'] : undefined,
    dispatchInputs,
    steps: jobs.flatMap((j) => j.steps ?? []),
  };
}

export function buildPlan(steps: Step[], sha: string): BuildPlan | string {
  const login = steps.find((s) => s.uses?.startsWith('docker/login-action@'));
  const build = steps.find((s) => s.uses?.startsWith('docker/build-push-action@'));
  if (!login) return 'the workflow has no docker/login-action step: the push would be anonymous';
  if (!build) return 'the workflow has no docker/build-push-action step';
  const user = SECRET_REF.exec(String(login.with?.username ?? ''))?.[1];
  const pass = SECRET_REF.exec(String(login.with?.password ?? ''))?.[1];
  if (!user || !pass) return 'the registry login must take username and password from secrets';
  if (build.with?.push !== true && build.with?.push !== 'true') return 'the build step does not push';
  const rawTags = build.with?.tags;
  const tags = (Array.isArray(rawTags) ? rawTags : String(rawTags ?? '').split(/[\n,]/))
    .map((t) =>
      String(t)
        .trim()
        .replace(/\$\{\{\s*github\.sha\s*\}\}/g, sha),
    )
    .filter(Boolean);
  if (!tags.length || tags.some((t) => t.includes('${{')))
    return 'the build step must tag the image with ${{ github.sha }}';
  return {
    registry: String(login.with?.registry ?? ''),
    usernameSecret: user,
    passwordSecret: pass,
    tags,
    context: String(build.with?.context ?? '.'),
  };
}

export class Runner {
  readonly #store: Store;
  readonly #opts: RunnerOptions;
  readonly faults: RunnerFaults = { keepQueued: false, failBuilds: 0 };
  readonly #timers = new Map<number, NodeJS.Timeout[]>();
  /** Called when a run completes (webhook delivery). */
  onCompleted: (repo: Repo, run: Run) => void = () => undefined;

  constructor(store: Store, opts: RunnerOptions) {
    this.#store = store;
    this.#opts = opts;
  }

  /** Starts (or, after an emulator restart, resumes) a run's lifecycle. */
  schedule(repo: Repo, run: Run): void {
    if (run.status === 'completed') return;
    const timers: NodeJS.Timeout[] = [];
    this.#timers.set(run.id, timers);
    const start = () => {
      if (run.status !== 'queued') return;
      if (this.faults.keepQueued) {
        timers.push(setTimeout(start, 100));
        return;
      }
      run.status = 'in_progress';
      run.startedAt = now();
      run.updatedAt = run.startedAt;
      run.log.push(`${run.startedAt} Job build started`);
      this.#store.save();
      const begun = Date.now();
      void this.#build(repo, run).then((outcome) => {
        const rest = Math.max(0, this.#opts.buildMs - (Date.now() - begun));
        timers.push(setTimeout(() => this.complete(repo, run, outcome), rest));
      });
    };
    if (run.status === 'in_progress') run.status = 'queued'; // interrupted by a restart: start over
    timers.push(setTimeout(start, this.#opts.queuedMs));
  }

  async #build(repo: Repo, run: Run): Promise<'success' | 'failure'> {
    const fail = (why: string) => {
      run.log.push(`Error: ${why}`);
      return 'failure' as const;
    };
    if (this.faults.failBuilds > 0) {
      this.faults.failBuilds--;
      return fail('build step failed: process exited with code 1 (simulated build failure)');
    }
    const file = this.#store.file(repo, run.headSha, run.workflowPath);
    if (!file) return fail(`${run.workflowPath} not found at ${run.headSha}`);
    const plan = buildPlan(readWorkflow(file.content.toString('utf8')).steps, run.headSha);
    if (typeof plan === 'string') return fail(plan);
    await sodium.ready;
    const open = (name: string): string | undefined => {
      const secret = repo.secrets[name];
      if (!secret) return undefined;
      const pk = sodium.from_base64(repo.keyPair.publicKey, sodium.base64_variants.ORIGINAL);
      const sk = sodium.from_base64(repo.keyPair.privateKey, sodium.base64_variants.ORIGINAL);
      const cipher = sodium.from_base64(secret.encrypted, sodium.base64_variants.ORIGINAL);
      return sodium.to_string(sodium.crypto_box_seal_open(cipher, pk, sk));
    };
    const username = open(plan.usernameSecret);
    const password = open(plan.passwordSecret);
    // GitHub substitutes an empty string for a missing secret; the login then fails.
    if (!username || !password)
      return fail(
        `docker/login-action: username and password required (secrets ${plan.usernameSecret}, ${plan.passwordSecret} are not set)`,
      );
    const files = this.#store.files(repo, run.headSha, plan.context);
    try {
      for (const tag of plan.tags) {
        if (run.status === 'completed') return 'failure'; // cancelled meanwhile
        const pushed = await pushImage(tag, {
          files,
          credentials: { username, password },
          insecureHosts: this.#opts.insecureHosts,
          labels: { 'org.opencontainers.image.revision': run.headSha },
        });
        run.digest = pushed.digest;
        run.image = tag;
        run.log.push(`Pushed ${tag} as ${pushed.digest}`);
      }
      return 'success';
    } catch (err) {
      return fail(`docker/build-push-action: ${(err as Error).message}`);
    }
  }

  complete(repo: Repo, run: Run, conclusion: 'success' | 'failure' | 'cancelled'): void {
    if (run.status === 'completed') return;
    for (const t of this.#timers.get(run.id) ?? []) clearTimeout(t);
    this.#timers.delete(run.id);
    run.status = 'completed';
    run.conclusion = conclusion;
    run.completedAt = now();
    run.updatedAt = run.completedAt;
    run.log.push(`${run.completedAt} Job build ${conclusion}`);
    this.#store.save();
    this.onCompleted(repo, run);
  }

  stop(): void {
    for (const timers of this.#timers.values()) for (const t of timers) clearTimeout(t);
    this.#timers.clear();
  }
}
