/**
 * The simulated Actions runner. Runs live like real ones (queued → in_progress → completed, with timestamps and
 * job steps) and do real work: the runner reads the dispatched workflow file at the run's commit, requires what
 * Flui's generated workflow must hold, decrypts the registry secrets with the repository's private key, logs in to
 * the registry, builds a small OCI image from the repository's files at that commit and pushes it with that
 * credential. A wrong credential fails the login step with the registry's 401, and the run with it, as on GitHub.
 *
 * What the runner reads from the workflow file (tolerantly: step order, extra steps and action versions, by tag or
 * by commit SHA, do not matter):
 * - `on: workflow_dispatch` (its `inputs` are what a dispatch may and must pass);
 * - the job's `environment`, whose secrets then take precedence over the repository's, as on GitHub;
 * - how the job logs in to the registry, one of:
 *   - a `docker/login-action` step whose `username` and `password` are `${{ secrets.NAME }}` (a static credential),
 *     or `${{ github.actor }}` and `${{ secrets.GITHUB_TOKEN }}` (the job's token: this emulator is no ghcr.io, so
 *     a real registry refuses it);
 *   - a `run` step with `env: { REGISTRY: <host>, REGISTRY_TOKEN: ${{ secrets.NAME }} }`, which on GitHub writes the
 *     token into the docker config as `registrytoken` (Flui's minted-token login): pushes then send it as the Bearer
 *     token itself, without a login and without a token service, as docker and buildx do;
 *   - cloud OIDC logins (AWS, Google, Azure) cannot be emulated, and the run fails saying so;
 * - a `docker/build-push-action` step with `push: true` and `tags` (a string, comma or newline separated, or a
 *   list) whose expressions are `${{ github.sha }}` or `${{ inputs.<name> }}`; `context` (default `.`) selects the
 *   files of the layer, and `file` (default `<context>/Dockerfile`) must exist at that commit, as docker requires.
 * The credential is sent only to the login's registry; a tag on another host is pushed anonymously.
 */
import { Lifecycles } from '@flui/emulator-kit/lifecycles';
import sodium from 'libsodium-wrappers';
import { parse } from 'yaml';
import { parseImageReference } from '../../../src/registry/reference.ts';
import type { RegistryOptions } from '../../../src/registry/oci.ts';
import { checkLogin, pushImage } from './registry-push.ts';
import { now, type Conclusion, type Repo, type Run, type RunStep, type Store } from './store.ts';

export interface RunnerOptions {
  queuedMs: number;
  buildMs: number;
  insecureHosts: string[];
}

export interface RunnerFaults {
  /** Runs stay queued while this is set. */
  keepQueued: boolean;
  /** At most this many runs in progress at once (a plan's concurrent-job limit); the rest wait queued. */
  maxInProgress: number;
  /** The next N builds fail in their build step. */
  failBuilds: number;
}

interface Step {
  name?: string;
  id?: string;
  uses?: string;
  run?: string;
  with?: Record<string, unknown>;
  env?: Record<string, unknown>;
}

/** How the job logs in to its registry. */
export type RegistryLogin =
  | { kind: 'password'; usernameSecret: string; passwordSecret: string }
  | { kind: 'github-token' }
  | { kind: 'bearer'; tokenSecret: string };

/** What Flui's generated workflow tells the runner to do, extracted tolerantly from the YAML. */
export interface BuildPlan {
  registry: string;
  login: RegistryLogin;
  tags: string[];
  context: string;
}

const SECRET_REF = /^\$\{\{\s*secrets\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}$/;

export type DispatchInput = { required?: boolean; type?: string; options?: unknown[]; default?: unknown };

/** Parses a workflow file. `dispatchInputs` lists the workflow_dispatch inputs (undefined: no such trigger). */
export function readWorkflow(text: string): {
  name?: string;
  runName?: string;
  dispatchInputs?: Record<string, DispatchInput>;
  steps: Step[];
  /** The GitHub Environment a job runs in (the first job that names one). */
  environment?: string;
} {
  let doc: Record<string, unknown>;
  try {
    const parsed = parse(text) as unknown;
    doc = parsed && typeof parsed === 'object' ? (parsed as Record<string, unknown>) : {};
  } catch {
    return { steps: [] }; // GitHub treats an unparsable file as a workflow without triggers
  }
  const on = doc.on ?? doc.true; // YAML 1.1 parsers read a bare `on` as true
  let dispatchInputs: Record<string, DispatchInput> | undefined;
  if (on && typeof on === 'object' && !Array.isArray(on) && 'workflow_dispatch' in on) {
    const wd = (on as Record<string, { inputs?: Record<string, DispatchInput | null> } | null>).workflow_dispatch;
    dispatchInputs = Object.fromEntries(Object.entries(wd?.inputs ?? {}).map(([k, v]) => [k, v ?? {}]));
  } else if (on === 'workflow_dispatch' || (Array.isArray(on) && on.includes('workflow_dispatch'))) {
    dispatchInputs = {};
  }
  const jobs = Object.values(
    (doc.jobs ?? {}) as Record<string, { steps?: Step[]; environment?: string | { name?: string } } | null>,
  );
  const environment = jobs
    .map((j) => (typeof j?.environment === 'string' ? j.environment : j?.environment?.name))
    .find((e): e is string => typeof e === 'string' && e !== '');
  return {
    name: typeof doc.name === 'string' ? doc.name : undefined,
    runName: typeof doc['run-name'] === 'string' ? doc['run-name'] : undefined,
    dispatchInputs,
    steps: jobs.flatMap((j) => (Array.isArray(j?.steps) ? j.steps.filter((s) => s && typeof s === 'object') : [])),
    ...(environment ? { environment } : {}),
  };
}

/** Why `inputs` do not fit the workflow's `workflow_dispatch` inputs, in GitHub's words, or undefined. */
export function checkDispatchInputs(
  declared: Record<string, DispatchInput>,
  inputs: Record<string, unknown>,
): string | undefined {
  const unexpected = Object.keys(inputs).filter((k) => !(k in declared));
  if (unexpected.length) return `Unexpected inputs provided: ${JSON.stringify(unexpected)}`;
  for (const [name, spec] of Object.entries(declared)) {
    const value = inputs[name];
    if (value === undefined || value === '') {
      if (spec.required && spec.default === undefined) return `Required input '${name}' not provided`;
      continue;
    }
    if (typeof value === 'object' && value !== null) return `Provided value for input '${name}' must be a string`;
    const text = String(value);
    if (spec.type === 'boolean' && text !== 'true' && text !== 'false') {
      return `Provided value '${text}' for input '${name}' not in the list of allowed values`;
    }
    if (spec.type === 'choice' && Array.isArray(spec.options) && !spec.options.map(String).includes(text)) {
      return `Provided value '${text}' for input '${name}' not in the list of allowed values`;
    }
    if (spec.type === 'number' && !Number.isFinite(Number(text))) {
      return `Provided value '${text}' for input '${name}' is not a number`;
    }
  }
  return undefined;
}

/** `owner/name@ref` is the action `owner/name`, whatever the ref (a tag, a branch, a commit SHA). */
const isAction = (s: Step, action: string) => s.uses?.toLowerCase().startsWith(`${action}@`) ?? false;
const isLogin = (s: Step) => isAction(s, 'docker/login-action');
const isBuild = (s: Step) => isAction(s, 'docker/build-push-action');
/** A `run` step that writes a registry token into the docker config (Flui's minted-token login). */
const isTokenLogin = (s: Step) =>
  typeof s.run === 'string' && typeof s.env?.REGISTRY === 'string' && s.env.REGISTRY_TOKEN !== undefined;
const CLOUD_LOGINS = ['aws-actions/configure-aws-credentials', 'google-github-actions/auth', 'azure/login'];
const GITHUB_ACTOR = /^\$\{\{\s*github\.actor\s*\}\}$/;
const GITHUB_TOKEN_REF = /^\$\{\{\s*(secrets\.GITHUB_TOKEN|github\.token)\s*\}\}$/;

export function buildPlan(steps: Step[], sha: string, inputs: Record<string, string> = {}): BuildPlan | string {
  const cloud = steps.find((s) => CLOUD_LOGINS.some((action) => isAction(s, action)));
  if (cloud) return `the emulated runner cannot log in with ${cloud.uses!.split('@')[0]} (cloud OIDC)`;
  const login = steps.find(isLogin);
  const tokenLogin = steps.find(isTokenLogin);
  const build = steps.find(isBuild);
  if (!login && !tokenLogin)
    return 'the workflow has no docker/login-action step (nor a registry token step): the push would be anonymous';
  if (!build) return 'the workflow has no docker/build-push-action step';
  let registry: string;
  let how: RegistryLogin;
  if (login) {
    const username = String(login.with?.username ?? '');
    const password = String(login.with?.password ?? '');
    const user = SECRET_REF.exec(username)?.[1];
    const pass = SECRET_REF.exec(password)?.[1];
    registry = String(login.with?.registry ?? '');
    if (GITHUB_ACTOR.test(username) && GITHUB_TOKEN_REF.test(password)) how = { kind: 'github-token' };
    else if (user && pass && pass !== 'GITHUB_TOKEN')
      how = { kind: 'password', usernameSecret: user, passwordSecret: pass };
    else return 'the registry login must take username and password from secrets';
  } else {
    const token = SECRET_REF.exec(String(tokenLogin!.env!.REGISTRY_TOKEN))?.[1];
    if (!token) return 'the registry token must come from a secret';
    registry = String(tokenLogin!.env!.REGISTRY);
    how = { kind: 'bearer', tokenSecret: token };
  }
  if (build.with?.push !== true && build.with?.push !== 'true') return 'the build step does not push';
  const rawTags = build.with?.tags;
  const tags = (Array.isArray(rawTags) ? rawTags : String(rawTags ?? '').split(/[\n,]/))
    .map((t) =>
      String(t)
        .trim()
        .replace(/\$\{\{\s*github\.sha\s*\}\}/g, sha)
        .replace(/\$\{\{\s*inputs\.([A-Za-z_][A-Za-z0-9_-]*)\s*\}\}/g, (_, name: string) => inputs[name] ?? ''),
    )
    .filter(Boolean);
  if (!tags.length || tags.some((t) => t.includes('${{')))
    return 'the build step must tag the image with ${{ github.sha }} or dispatch inputs';
  return { registry, login: how, tags, context: String(build.with?.context ?? '.') };
}

/** The Dockerfile the build step names, relative to the repository root. */
export function dockerfileOf(steps: Step[]): string {
  const build = steps.find(isBuild);
  const context = String(build?.with?.context ?? '.').replace(/^\.\/?/, '');
  const file = build?.with?.file;
  return typeof file === 'string' && file ? file.replace(/^\.\//, '') : `${context ? `${context}/` : ''}Dockerfile`;
}

function stepName(step: Step): string {
  if (step.name) return step.name;
  if (step.uses) return `Run ${step.uses}`;
  return `Run ${String(step.run ?? '').split('\n')[0]}`;
}

/** The log's line format: GitHub's timestamp, then the text. */
const line = (text: string) => `${new Date().toISOString().replace('Z', '0000Z')} ${text}`;

export class Runner {
  readonly #store: Store;
  readonly #opts: RunnerOptions;
  readonly faults: RunnerFaults = { keepQueued: false, maxInProgress: Infinity, failBuilds: 0 };
  /** Per run: its pending timers and the abort of its build; runs in progress count against `maxInProgress`. */
  readonly #runs = new Lifecycles();
  /** Called when a run completes (webhook delivery). */
  onCompleted: (repo: Repo, run: Run) => void = () => undefined;

  constructor(store: Store, opts: RunnerOptions) {
    this.#store = store;
    this.#opts = opts;
  }

  /** Starts (or, after an emulator restart, resumes) a run's lifecycle. */
  schedule(repo: Repo, run: Run): void {
    if (run.status === 'completed' || this.#runs.stopped) return;
    const active = this.#runs.begin(run.id);
    const attempt = run.attempt;
    const current = () => run.attempt === attempt && run.status !== 'completed' && !this.#runs.stopped;
    const start = () => {
      if (!current() || run.status !== 'queued') return;
      if (this.faults.keepQueued || this.#runs.running >= this.faults.maxInProgress) {
        active.timers.push(setTimeout(start, 50));
        return;
      }
      this.#runs.run(run.id);
      run.status = 'in_progress';
      run.startedAt = now();
      run.updatedAt = run.startedAt;
      this.#store.save();
      const begun = Date.now();
      void this.#build(repo, run, active.abort.signal)
        .catch((err: unknown) => {
          run.log.push(line(`##[error]runner failure: ${(err as Error).message}`));
          return 'failure' as const;
        })
        .then((outcome) => {
          if (!current()) return;
          const rest = Math.max(0, this.#opts.buildMs - (Date.now() - begun));
          active.timers.push(setTimeout(() => current() && this.complete(repo, run, outcome), rest));
        });
    };
    // A run interrupted by a restart starts over, as GitHub restarts jobs whose runner was lost.
    if (run.status === 'in_progress') {
      run.status = 'queued';
      run.log.push(line('The runner was lost; the job is queued again'));
    }
    run.steps = undefined;
    active.timers.push(setTimeout(start, this.#opts.queuedMs));
  }

  async #build(repo: Repo, run: Run, signal: AbortSignal): Promise<'success' | 'failure'> {
    const file = this.#store.file(repo, run.headSha, run.workflowPath);
    const workflow = file ? readWorkflow(file.content.toString('utf8')) : { steps: [] as Step[] };
    const steps: RunStep[] = ['Set up job', ...workflow.steps.map(stepName), 'Complete job'].map((name, i) => ({
      number: i + 1,
      name,
      status: 'queued',
      conclusion: null,
      log: [],
    }));
    run.steps = steps;
    const log = (step: RunStep, text: string) => {
      const l = line(text);
      step.log.push(l);
      run.log.push(l);
    };
    const begin = (step: RunStep) => {
      step.status = 'in_progress';
      step.startedAt = now();
      log(step, `##[group]${step.name}`);
    };
    const end = (step: RunStep, conclusion: RunStep['conclusion']) => {
      if (step.status === 'in_progress') log(step, '##[endgroup]');
      step.status = 'completed';
      step.conclusion = conclusion;
      step.completedAt = now();
    };
    const fail = (step: RunStep, why: string): 'failure' => {
      log(step, `##[error]${why}`);
      end(step, 'failure');
      for (const s of steps.slice(step.number)) end(s, s === steps.at(-1) ? 'success' : 'skipped');
      return 'failure';
    };
    const setup = steps[0]!;
    begin(setup);
    log(setup, `Job build started for ${run.headSha} (attempt ${run.attempt})`);
    const plan = file
      ? buildPlan(workflow.steps, run.headSha, run.inputs)
      : `${run.workflowPath} not found at ${run.headSha}`;
    if (typeof plan === 'string') return fail(setup, `Invalid workflow for Flui's build: ${plan}`);
    const environment = workflow.environment ? this.#store.environment(repo, workflow.environment) : undefined;
    if (workflow.environment) {
      // GitHub creates an environment a job names on its first run.
      log(setup, `Environment: ${workflow.environment}${environment ? '' : ' (created)'}`);
    }
    end(setup, 'success');

    await sodium.ready;
    /** A secret as the job sees it: the environment's first, then the repository's; '' when not set, as on GitHub. */
    const secret = (name: string): string => {
      const upper = name.toUpperCase();
      const scope = environment?.secrets[upper] ? environment : repo.secrets[upper] ? repo : undefined;
      const sealed = scope?.secrets[upper];
      if (!scope || !sealed) return '';
      const pk = sodium.from_base64(scope.keyPair.publicKey, sodium.base64_variants.ORIGINAL);
      const sk = sodium.from_base64(scope.keyPair.privateKey, sodium.base64_variants.ORIGINAL);
      const cipher = sodium.from_base64(sealed.encrypted, sodium.base64_variants.ORIGINAL);
      return sodium.to_string(sodium.crypto_box_seal_open(cipher, pk, sk));
    };
    /** What the pushes to the login's registry authenticate with. */
    let auth: Partial<Pick<RegistryOptions, 'credentials' | 'bearerToken'>> = {};
    for (const [i, spec] of workflow.steps.entries()) {
      const step = steps[i + 1]!;
      if (signal.aborted) return 'failure';
      begin(step);
      if (isAction(spec, 'actions/checkout')) {
        log(step, `Checked out ${repo.owner}/${repo.name} at ${run.headSha}`);
      } else if (isLogin(spec)) {
        let username: string;
        let password: string;
        if (plan.login.kind === 'github-token') {
          // The job's own token: an emulated one, which only an emulated ghcr.io would know.
          username = 'github-actions';
          password = `ghs_emulated${run.id}`;
        } else if (plan.login.kind === 'password') {
          username = secret(plan.login.usernameSecret);
          password = secret(plan.login.passwordSecret);
          if (!username || !password) {
            return fail(
              step,
              `Username and password required (secrets ${plan.login.usernameSecret} and ${plan.login.passwordSecret} must be set)`,
            );
          }
        } else {
          return fail(step, 'the workflow logs in twice');
        }
        log(step, `Logging into ${plan.registry}...`);
        try {
          await checkLogin(plan.registry, {
            credentials: { username, password },
            insecureHosts: this.#opts.insecureHosts,
            signal,
          });
        } catch (err) {
          if (signal.aborted) return 'failure';
          return fail(step, `Error response from daemon: login to ${plan.registry} failed: ${(err as Error).message}`);
        }
        auth = { credentials: { username, password } };
        log(step, 'Login Succeeded!');
      } else if (plan.login.kind === 'bearer' && isTokenLogin(spec)) {
        const token = secret(plan.login.tokenSecret);
        if (!token) return fail(step, `jq: error: the secret ${plan.login.tokenSecret} is not set`);
        // What the step does on GitHub: `auths.<registry>.registrytoken` in the docker config, sent as is.
        auth = { bearerToken: token };
        log(step, `Wrote a registry token for ${plan.registry} into the docker config`);
      } else if (isBuild(spec)) {
        if (this.faults.failBuilds > 0) {
          this.faults.failBuilds--;
          return fail(step, 'buildx failed with: process exited with code 1 (simulated build failure)');
        }
        const dockerfile = dockerfileOf(workflow.steps);
        if (!this.#store.file(repo, run.headSha, dockerfile)) {
          return fail(
            step,
            `buildx failed with: ERROR: failed to solve: failed to read dockerfile: open ${dockerfile}: no such file or directory`,
          );
        }
        const files = this.#store.files(repo, run.headSha, plan.context);
        for (const tag of plan.tags) {
          let host: string;
          try {
            host = parseImageReference(tag).host;
          } catch (err) {
            return fail(step, `buildx failed with: ERROR: ${(err as Error).message}`);
          }
          try {
            const pushed = await pushImage(tag, {
              files,
              ...(host === plan.registry ? auth : {}),
              insecureHosts: this.#opts.insecureHosts,
              labels: { 'org.opencontainers.image.revision': run.headSha },
              signal,
            });
            run.digest = pushed.digest;
            run.image = tag;
            log(step, `Pushed ${tag} as ${pushed.digest}`);
          } catch (err) {
            if (signal.aborted) return 'failure';
            return fail(step, `buildx failed with: ERROR: failed to push ${tag}: ${(err as Error).message}`);
          }
        }
        log(step, `digest=${run.digest}`);
      } else if (spec.run) {
        log(step, spec.run.split('\n')[0]!);
      }
      end(step, 'success');
    }
    const last = steps.at(-1)!;
    begin(last);
    log(last, 'Cleaning up orphan processes');
    end(last, 'success');
    return 'success';
  }

  /** Completes a run now (a cancel, or the end of its build). Idempotent. */
  complete(repo: Repo, run: Run, conclusion: Conclusion): void {
    if (run.status === 'completed') return;
    this.#runs.release(run.id);
    run.status = 'completed';
    run.conclusion = conclusion;
    run.completedAt = now();
    run.completedAtMs = Date.now();
    run.updatedAt = run.completedAt;
    if (conclusion === 'cancelled') {
      for (const s of run.steps ?? []) {
        if (s.status === 'completed') continue;
        s.conclusion = s.status === 'in_progress' ? 'cancelled' : 'skipped';
        s.status = 'completed';
        s.completedAt = run.completedAt;
      }
      run.log.push(line('##[error]The operation was canceled.'));
    }
    run.log.push(line(`Job build completed: ${conclusion}`));
    this.#store.save();
    this.onCompleted(repo, run);
  }

  stop(): void {
    this.#runs.stop();
  }
}
