/**
 * The emulated GitLab Runner. Pipelines live like real ones — `pending` → `running` → `success`/`failed`/`canceled`,
 * jobs stage by stage with timestamps and traces — and the build job does real work: the runner reads the job's
 * script (after `$[[ inputs ]]` interpolation, with CI/CD variables, pipeline variables, job variables and the
 * predefined `CI_*` variables expanded as a shell would) and, where it finds buildah, acts it out:
 * - `buildah login [-u U] [-p P | --password-stdin] HOST` (the password piped in with `echo`/`printf`) checks the
 *   credential against the registry (`GET /v2/`), as buildah does, and keeps it for that host;
 * - `buildah bud|build ... -t IMAGE [-f FILE] CONTEXT` requires FILE (default `CONTEXT/Containerfile` or
 *   `Dockerfile`) at the pipeline's commit, and takes the CONTEXT directory's files as the image's one layer;
 * - `buildah push [--creds U:P] [--digestfile F] IMAGE [docker://DEST]` pushes that image to the real registry
 *   with the login's (or `--creds`') credential — sent only to its own host — and writes the digest to F, so a later
 *   `cat F` prints it; to `docker-archive:PATH` or `oci-archive:PATH` it keeps the image in that file instead;
 * - `skopeo copy [--dest-registry-token T | --dest-creds U:P] [--digestfile F] docker-archive:PATH docker://DEST`
 *   pushes an archived image the same way, with the Bearer token T sent as it is (no token service), as skopeo does;
 *   `skopeo --version` prints a version;
 * - any other line is echoed to the trace (`echo` prints its arguments).
 * Values of masked variables are replaced by `[MASKED]` in traces, as GitLab does. A job with no buildah line just
 * succeeds. The real registry's 401 fails the job with buildah's words in the trace.
 *
 * Not modelled: the Containerfile's instructions (the layer is the context's files, as in the GitHub emulator),
 * buildah's TLS flags (registries in `insecureHosts` are spoken to over HTTP whatever the job says), job `timeout`,
 * `interruptible` and auto-cancelling, services, artifacts and caches.
 *
 * `CI_REGISTRY`, `CI_REGISTRY_USER`, `CI_REGISTRY_PASSWORD`, `CI_REGISTRY_IMAGE` exist when the emulator is given a
 * `ciRegistry` (a real registry standing in for GitLab's container registry): its static credential then plays the
 * job's short-lived one (the gap: it does not expire with the job). `CI_JOB_TOKEN` is a per-job random value the
 * emulator's API does not accept.
 */
import { randomBytes } from 'node:crypto';
import { Lifecycles } from '@flui/emulator-kit/lifecycles';
import { checkLogin, pushImage } from '@flui/github-emulator/registry-push';
import { expand, expandVariable } from './ci-yaml.ts';
import { now, type Job, type Pipeline, type Project, type Store } from './store.ts';

export interface RunnerOptions {
  pendingMs: number;
  buildMs: number;
  insecureHosts: string[];
  ciRegistry?: { host: string; username: string; password: string };
  /** The emulator's base URL (for `CI_SERVER_URL`, `CI_API_V4_URL`, `CI_PROJECT_URL`). */
  base: () => string;
}

export interface RunnerFaults {
  keepPending: boolean;
  maxRunning: number;
  failBuilds: number;
}

/** Splits a shell line into commands at unquoted `|`, `&&`, `||`, `;`, each command into words (quotes removed). */
export function shellWords(
  line: string,
  vars: Record<string, string>,
  files: Map<string, string>,
): { words: string[]; pipe: boolean }[] {
  const commands: { words: string[]; pipe: boolean }[] = [];
  let words: string[] = [];
  let word: string | undefined;
  let i = 0;
  const push = () => {
    if (word !== undefined) words.push(word);
    word = undefined;
  };
  const end = (pipe: boolean) => {
    push();
    if (words.length) commands.push({ words, pipe });
    words = [];
  };
  const sub = (text: string) =>
    text.replace(/\$\(\s*cat\s+([^)\s]+)\s*\)/g, (_m, f: string) => files.get(expand(f, vars)) ?? '');
  while (i < line.length) {
    const c = line[i]!;
    if (c === "'") {
      const j = line.indexOf("'", i + 1);
      word = (word ?? '') + line.slice(i + 1, j < 0 ? undefined : j);
      i = j < 0 ? line.length : j + 1;
    } else if (c === '"') {
      let j = i + 1;
      let text = '';
      while (j < line.length && line[j] !== '"') {
        if (line[j] === '\\' && j + 1 < line.length) j++;
        text += line[j];
        j++;
      }
      word = (word ?? '') + expand(sub(text), vars);
      i = j + 1;
    } else if (/\s/.test(c)) {
      push();
      i++;
    } else if (c === '|' || c === ';' || c === '&') {
      const two = line.slice(i, i + 2);
      end(c === '|' && two !== '||');
      i += two === '&&' || two === '||' ? 2 : 1;
    } else {
      let j = i;
      while (j < line.length && !/[\s'"|;&]/.test(line[j]!)) j++;
      word = (word ?? '') + expand(sub(line.slice(i, j)), vars);
      i = j;
    }
  }
  end(false);
  return commands;
}

/** Flags of buildah's subcommands that take a value (so positional arguments can be told apart). */
const VALUED = new Set([
  '-t',
  '--tag',
  '-f',
  '--file',
  '--creds',
  '--digestfile',
  '-u',
  '--username',
  '-p',
  '--password',
  '--authfile',
  '--storage-driver',
  '--root',
  '--runroot',
  '--isolation',
  '--format',
  '--layers-cache',
  '--build-arg',
  '--label',
  '--platform',
  '--cert-dir',
  '--retry',
  '--retry-delay',
  '--signature-policy',
  '--compression-format',
  '--dest-registry-token',
  '--src-registry-token',
  '--dest-creds',
  '--src-creds',
]);

function parseFlags(args: string[]): { flags: Record<string, string[]>; positional: string[] } {
  const flags: Record<string, string[]> = {};
  const positional: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a.startsWith('-')) {
      const eq = a.indexOf('=');
      const name = eq > 0 ? a.slice(0, eq) : a;
      const value = eq > 0 ? a.slice(eq + 1) : VALUED.has(name) ? (args[++i] ?? '') : 'true';
      (flags[name] ??= []).push(value);
    } else positional.push(a);
  }
  return { flags, positional };
}

const flag = (f: Record<string, string[]>, ...names: string[]) =>
  names.map((n) => f[n]?.at(-1)).find((v) => v !== undefined);
const hostOf = (image: string) => image.replace(/^docker:\/\//, '').split('/')[0]!;

export class Runner {
  readonly #store: Store;
  readonly #opts: RunnerOptions;
  readonly faults: RunnerFaults = { keepPending: false, maxRunning: Infinity, failBuilds: 0 };
  /** Per pipeline: its pending timers and the abort of its jobs; running ones count against `maxRunning`. */
  readonly #pipelines = new Lifecycles();
  /** Called on every pipeline status change (the Pipeline Hook). */
  onChange: (project: Project, pipeline: Pipeline) => void = () => undefined;

  constructor(store: Store, opts: RunnerOptions) {
    this.#store = store;
    this.#opts = opts;
  }

  /** The predefined variables of a job (GitLab's "Predefined CI/CD variables" reference, the ones Flui may use). */
  predefined(project: Project, pipeline: Pipeline, job: Job): Record<string, string> {
    const base = this.#opts.base();
    const reg = this.#opts.ciRegistry;
    return {
      CI: 'true',
      GITLAB_CI: 'true',
      CI_SERVER_URL: base,
      CI_API_V4_URL: `${base}/api/v4`,
      CI_PROJECT_ID: String(project.id),
      CI_PROJECT_PATH: project.path,
      CI_PROJECT_NAME: project.path.split('/').at(-1)!,
      CI_PROJECT_NAMESPACE: project.path.split('/').slice(0, -1).join('/'),
      CI_PROJECT_URL: `${base}/${project.path}`,
      CI_PROJECT_DIR: `/builds/${project.path}`,
      CI_DEFAULT_BRANCH: project.defaultBranch,
      CI_PIPELINE_ID: String(pipeline.id),
      CI_PIPELINE_IID: String(pipeline.iid),
      CI_PIPELINE_SOURCE: pipeline.source,
      CI_PIPELINE_NAME: pipeline.name ?? '',
      CI_COMMIT_SHA: pipeline.sha,
      CI_COMMIT_SHORT_SHA: pipeline.sha.slice(0, 8),
      CI_COMMIT_REF_NAME: pipeline.ref,
      CI_COMMIT_BRANCH: pipeline.ref,
      CI_JOB_ID: String(job.id),
      CI_JOB_NAME: job.name,
      CI_JOB_STAGE: job.stage,
      CI_JOB_TOKEN: `glcbt-emulated-${randomBytes(12).toString('hex')}`,
      ...(reg
        ? {
            CI_REGISTRY: reg.host,
            CI_REGISTRY_IMAGE: `${reg.host}/${project.path.toLowerCase()}`,
            CI_REGISTRY_USER: reg.username,
            CI_REGISTRY_PASSWORD: reg.password,
          }
        : {}),
    };
  }

  /** Starts (or, after an emulator restart, resumes from the start) a pipeline's lifecycle. */
  schedule(project: Project, pipeline: Pipeline): void {
    if (this.#pipelines.stopped || ['success', 'failed', 'canceled', 'skipped'].includes(pipeline.status)) return;
    const active = this.#pipelines.begin(pipeline.id);
    const live = () => !this.#pipelines.stopped && !['success', 'failed', 'canceled'].includes(pipeline.status);
    if (pipeline.status === 'running') {
      // The runner was lost with the emulator: its jobs start over, as GitLab retries jobs of a lost runner.
      pipeline.status = 'pending';
      for (const job of pipeline.jobs) {
        if (job.status === 'running') {
          job.status = 'pending';
          job.trace.push('ERROR: Job failed (system failure): the runner was lost; the job is started again');
        }
      }
    }
    const start = () => {
      if (!live()) return;
      if (this.faults.keepPending || this.#pipelines.running >= this.faults.maxRunning) {
        active.timers.push(setTimeout(start, 50));
        return;
      }
      this.#pipelines.run(pipeline.id);
      void this.#run(project, pipeline, active.abort.signal).catch((err: unknown) => {
        if (live()) this.#finish(project, pipeline, 'failed', `runner failure: ${(err as Error).message}`);
      });
    };
    active.timers.push(setTimeout(start, this.#opts.pendingMs));
  }

  #set(project: Project, pipeline: Pipeline, status: Pipeline['status']): void {
    if (pipeline.status === status) return;
    pipeline.status = status;
    pipeline.updatedAt = now();
    pipeline.revision++;
    this.#store.save();
    this.onChange(project, pipeline);
  }

  async #run(project: Project, pipeline: Pipeline, signal: AbortSignal): Promise<void> {
    for (const job of pipeline.jobs) {
      if (signal.aborted) return;
      if (job.status !== 'pending' && job.status !== 'created') continue;
      const begun = Date.now();
      job.status = 'running';
      job.startedAt = now();
      job.trace = [];
      if (!pipeline.startedAt) pipeline.startedAt = job.startedAt;
      this.#set(project, pipeline, 'running');
      const ok = await this.#job(project, pipeline, job, signal).catch((err: unknown) => {
        job.trace.push(`ERROR: ${(err as Error).message}`);
        return false;
      });
      if (signal.aborted) return;
      const rest = Math.max(0, this.#opts.buildMs - (Date.now() - begun));
      if (rest)
        await new Promise((resolve) => this.#pipelines.get(pipeline.id)?.timers.push(setTimeout(resolve, rest)));
      if (signal.aborted) return;
      job.finishedAt = now();
      if (!ok) {
        job.status = 'failed';
        job.failureReason = 'script_failure';
        job.trace.push('Cleaning up project directory and file based variables', 'ERROR: Job failed: exit code 1');
        this.#finish(project, pipeline, 'failed');
        return;
      }
      job.status = 'success';
      job.trace.push('Cleaning up project directory and file based variables', 'Job succeeded');
      this.#store.save();
    }
    this.#finish(project, pipeline, 'success');
  }

  async #job(project: Project, pipeline: Pipeline, job: Job, signal: AbortSignal): Promise<boolean> {
    const spec = job;
    // Masked values are replaced in the trace, as GitLab Runner does (its minimum masked length is 8).
    const masked = project.variables.filter((v) => v.masked && v.value.length >= 8).map((v) => v.value);
    const log = (text: string) => {
      let t = text;
      for (const m of masked) t = t.split(m).join('[MASKED]');
      job.trace.push(t);
    };
    log(`Running with gitlab-runner 17.10.0 (emulated) on flui-emulated-runner`);
    log(`Preparing the "docker" executor${spec?.image ? ` using image ${spec.image}` : ''}`);
    log(`Getting source from Git repository`);
    log(`Checking out ${pipeline.sha.slice(0, 8)} as detached HEAD (ref is ${pipeline.ref})...`);
    // Precedence (GitLab's "CI/CD variable precedence", lowest first): predefined, YAML job variables, project
    // variables, pipeline variables. Values not marked raw expand `$$` and references, as GitLab does.
    const predefined = this.predefined(project, pipeline, job);
    const vars: Record<string, string> = { ...predefined };
    for (const [k, v] of Object.entries(spec.variables)) vars[k] = expandVariable(v, vars);
    // A protected variable reaches only pipelines of protected refs (the emulator protects the default branch).
    const visible = project.variables.filter((v) => !v.protected || pipeline.ref === project.defaultBranch);
    for (const v of visible) vars[v.key] = v.raw ? v.value : expandVariable(v.value, vars);
    for (const v of pipeline.variables) vars[v.key] = expandVariable(v.value, vars);
    const files = new Map<string, string>();
    const logins = new Map<string, { username: string; password: string }>();
    let built: { tag: string; context: string } | undefined;
    /** Images kept in archive files (`buildah push IMAGE docker-archive:PATH`), by path. */
    const archives = new Map<string, { tag: string; context: string }>();
    /** Pushes `image` to `dest` (`host/path:tag`) as buildah or skopeo would; false (logged) when refused. */
    const pushTo = async (
      image: { tag: string; context: string },
      dest: string,
      auth: { credentials?: { username: string; password: string }; bearerToken?: string },
      digestfile: string | undefined,
    ): Promise<boolean> => {
      log('Getting image source signatures');
      let digest: string;
      try {
        const pushed = await pushImage(dest, {
          files: this.#store.files(project, pipeline.sha, image.context),
          ...auth,
          insecureHosts: this.#opts.insecureHosts,
          labels: { 'org.opencontainers.image.revision': pipeline.sha },
          signal,
        });
        digest = pushed.digest;
      } catch (err) {
        if (signal.aborted) return false;
        log(`Error: pushing image "${dest}" to "docker://${dest}": ${(err as Error).message}`);
        return false;
      }
      log('Writing manifest to image destination');
      if (digestfile) files.set(digestfile, digest);
      job.build = true;
      // The first push names the pipeline's image (later pushes of the same image add tags).
      if (!pipeline.digest) {
        pipeline.image = dest;
        pipeline.digest = digest;
      }
      this.#store.save();
      return true;
    };
    log('Executing "step_script" stage of the job script');
    if (this.faults.failBuilds > 0) {
      this.faults.failBuilds--;
      log(`$ ${spec.script[0] ?? 'true'}`);
      log('Error: building at STEP "RUN make": while running runtime: exit status 1 (simulated build failure)');
      return false;
    }
    for (const line of spec.script) {
      if (signal.aborted) return false;
      log(`$ ${line}`);
      const commands = shellWords(line, vars, files);
      let stdin = '';
      for (const { words, pipe } of commands) {
        const [cmd, sub, ...args] = words;
        let out = '';
        if (cmd === 'echo') out = [sub, ...args].filter((w) => w !== undefined && w !== '-n').join(' ');
        else if (cmd === 'printf') out = sub?.includes('%s') ? args.join('') : (sub ?? '');
        else if (cmd === 'base64' && (sub === '-d' || sub === '--decode'))
          out = Buffer.from(stdin.trim(), 'base64').toString('utf8');
        else if (cmd === 'cat' && sub && files.has(sub)) out = files.get(sub)!;
        else if (cmd === 'buildah' && sub === 'login') {
          const { flags, positional } = parseFlags(args);
          const host = positional[0] ?? '';
          const username = flag(flags, '-u', '--username') ?? '';
          const password = flags['--password-stdin'] ? stdin.trim() : (flag(flags, '-p', '--password') ?? '');
          try {
            await checkLogin(host, {
              credentials: { username, password },
              insecureHosts: this.#opts.insecureHosts,
              signal,
            });
          } catch (err) {
            log(`Error: logging into "${host}": invalid username/password: ${(err as Error).message}`);
            return false;
          }
          logins.set(host, { username, password });
          log('Login Succeeded!');
        } else if (cmd === 'buildah' && (sub === 'bud' || sub === 'build')) {
          const { flags, positional } = parseFlags(args);
          const tag = flag(flags, '-t', '--tag');
          const context = (positional[0] ?? '.').replace(/^\.\/?/, '') || '.';
          const dir = context === '.' ? '' : `${context.replace(/\/$/, '')}/`;
          const file = flag(flags, '-f', '--file')?.replace(/^\.\//, '');
          const candidates = file ? [file, `${dir}${file}`] : [`${dir}Containerfile`, `${dir}Dockerfile`];
          if (!candidates.some((c) => this.#store.file(project, pipeline.sha, c))) {
            log(
              `Error: no Containerfile or Dockerfile specified or found in context directory, ${context}: no such file or directory`,
            );
            return false;
          }
          if (!tag) {
            log('Error: the emulated runner needs buildah build -t <image> to know what to push');
            return false;
          }
          built = { tag, context };
          log(
            `STEP 1/1: emulated build of ${candidates.find((c) => this.#store.file(project, pipeline.sha, c))}: one layer of ${context}`,
          );
          log(`COMMIT ${tag}`);
        } else if (cmd === 'buildah' && sub === 'push') {
          const { flags, positional } = parseFlags(args);
          const source = positional[0];
          const target = positional[1] ?? source ?? '';
          if (
            !built ||
            !source ||
            (source !== built.tag && !built.tag.startsWith(`${source}:`) && source !== built.tag.split(':')[0])
          ) {
            log(`Error: ${source ?? '(none)'}: image not known`);
            return false;
          }
          const archive = /^(?:docker|oci)-archive:([^:]+)/.exec(target)?.[1];
          if (archive) {
            archives.set(archive, built);
            log('Getting image source signatures');
            log('Writing manifest to image destination');
          } else {
            const dest = target.replace(/^docker:\/\//, '');
            const creds = flag(flags, '--creds');
            const credentials = creds
              ? { username: creds.split(':')[0]!, password: creds.split(':').slice(1).join(':') }
              : logins.get(hostOf(dest));
            const ok = await pushTo(built, dest, credentials ? { credentials } : {}, flag(flags, '--digestfile'));
            if (!ok) return false;
          }
        } else if (cmd === 'skopeo' && (sub === '--version' || sub === 'version')) {
          out = 'skopeo version 1.18.0 (emulated)';
        } else if (cmd === 'skopeo' && sub === 'copy') {
          const { flags, positional } = parseFlags(args);
          const [source = '', target = ''] = positional;
          const image = archives.get(/^(?:docker|oci)-archive:([^:]+)/.exec(source)?.[1] ?? '');
          if (!image) {
            log(`FATA[0000] initializing source ${source}: no such file or directory`);
            return false;
          }
          if (!target.startsWith('docker://')) {
            log(`FATA[0000] the emulated runner copies only to docker:// destinations, not ${target}`);
            return false;
          }
          const dest = target.slice('docker://'.length);
          const token = flag(flags, '--dest-registry-token');
          const creds = flag(flags, '--dest-creds');
          const auth = token
            ? { bearerToken: token }
            : creds
              ? { credentials: { username: creds.split(':')[0]!, password: creds.split(':').slice(1).join(':') } }
              : {};
          if (!(await pushTo(image, dest, auth, flag(flags, '--digestfile')))) return false;
        } else if (cmd === 'exit' && sub && sub !== '0') {
          return false;
        }
        if (pipe) stdin = out;
        else {
          stdin = '';
          if (out) log(out);
        }
      }
    }
    return true;
  }

  #finish(project: Project, pipeline: Pipeline, status: 'success' | 'failed' | 'canceled', why?: string): void {
    this.#pipelines.release(pipeline.id);
    const t = now();
    for (const job of pipeline.jobs) {
      if (job.status === 'running' || job.status === 'pending' || job.status === 'created') {
        if (why && job.status === 'running') job.trace.push(`ERROR: ${why}`);
        job.status = status === 'canceled' ? 'canceled' : job.status === 'running' ? 'failed' : 'skipped';
        if (job.status !== 'skipped') job.finishedAt = t;
      }
    }
    pipeline.finishedAt = t;
    pipeline.finishedAtMs = Date.now();
    this.#set(project, pipeline, status);
  }

  /** Cancels a pipeline now (idempotent; a finished pipeline stays as it is). */
  cancel(project: Project, pipeline: Pipeline): void {
    if (['success', 'failed', 'canceled', 'skipped'].includes(pipeline.status)) return;
    this.#finish(project, pipeline, 'canceled');
  }

  stop(): void {
    this.#pipelines.stop();
  }
}
