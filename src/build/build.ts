/**
 * One build, start to end: the source at its commit into a fresh work directory, the bases its Dockerfile names
 * pulled (with network), `buildah bud --layers` in the app's cache (RUN steps without network unless allowed), every
 * tag pushed with `--digestfile`, and everything removed after, whatever happened.
 *
 * Idempotent by construction: the work directory and the local image are named by the build id plus a random
 * suffix, nothing is tagged locally under the target's name, and pushes are content-addressed — a build redone after
 * a crash at any line pushes the same or an equivalent image under the same tags.
 */
import { randomBytes } from 'node:crypto';
import { chmod, lstat, lchown, mkdir, readFile, readdir, realpath, rm, stat, writeFile } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { ServiceError } from '../errors.ts';
import { parseImageReference } from '../registry/reference.ts';
import {
  authFile,
  buildArgFlags,
  globalFlags,
  pullFailureKind,
  pullHost,
  pushFailureKind,
  qualify,
  registriesConf,
  signaturePolicy,
} from './buildah.ts';
import { acquireCache, evictCaches } from './cache.ts';
import { baseImages, buildArgProblems, insidePath } from './dockerfile.ts';
import { BuildLog } from './logs.ts';
import { Aborted, runCommand } from './process.ts';
import { createSandbox, SUBID_BASE, type Sandbox } from './sandbox.ts';
import { fetchSource, sourceSecrets } from './source.ts';
import type { BuilderSettings, BuildOptions, BuildResult, BuildSpec } from './types.ts';

const BUILD_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const MAX_DOCKERFILE_BYTES = 1 << 20;

function invalid(message: string): ServiceError {
  return new ServiceError({ service: 'Builder', kind: 'invalid', message });
}

/** Checks the spec (hostile parts from the manifest) before anything starts; throws `invalid`. */
export function checkSpec(spec: BuildSpec): { context: string; dockerfile: string } {
  const problems: string[] = [];
  if (!BUILD_ID.test(spec.buildId)) problems.push(`build id "${spec.buildId}" has characters outside [A-Za-z0-9._-]`);
  if (!spec.app || spec.app.length > 253) problems.push('app must be "<namespace>.<name>"');
  const context = insidePath(spec.context || '.');
  if (!context) problems.push(`build context "${spec.context}" leaves the repository`);
  const dockerfile = insidePath(spec.dockerfile || 'Dockerfile');
  if (!dockerfile || dockerfile === '.') problems.push(`Dockerfile "${spec.dockerfile}" leaves the build context`);
  problems.push(...buildArgProblems(spec.buildArgs ?? {}));
  const ref = (() => {
    try {
      return parseImageReference(spec.image);
    } catch (err) {
      problems.push((err as Error).message);
      return undefined;
    }
  })();
  if (ref && (ref.tag || ref.digest))
    problems.push(`image "${spec.image}" must be a repository, without tag or digest`);
  if (!spec.tags.length) problems.push('at least one tag to push');
  for (const t of spec.tags) if (!TAG.test(t)) problems.push(`"${t}" is not a valid image tag`);
  if (!(spec.timeoutMs > 0)) problems.push('timeoutMs must be positive');
  if (problems.length) throw invalid(`cannot build ${spec.app}: ${problems.join('; ')}`);
  return { context: context!, dockerfile: dockerfile! };
}

/** The host ids that are root inside the build's user namespace, when there is one. */
function ownerOf(settings: BuilderSettings): { uid: number; gid: number } | undefined {
  return settings.userNamespace ? { uid: SUBID_BASE, gid: SUBID_BASE } : undefined;
}

/** Gives `dir` and everything in it to the sandbox's root (links themselves, never their targets). */
async function chownTree(dir: string, owner: { uid: number; gid: number }): Promise<void> {
  await lchown(dir, owner.uid, owner.gid);
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) await chownTree(p, owner);
    else await lchown(p, owner.uid, owner.gid);
  }
}

/** The sandbox's root must reach the work and cache directories: each ancestor searchable by others. */
async function checkReachable(dirs: string[]): Promise<void> {
  for (const dir of dirs) {
    await mkdir(dir, { recursive: true });
    const real = await realpath(dir);
    const parts = real.split(sep).filter(Boolean);
    for (let i = 0; i < parts.length; i++) {
      const at = sep + parts.slice(0, i + 1).join(sep);
      const st = await stat(at);
      if (!(st.mode & 0o001)) {
        if (at === real) await chmod(at, (st.mode & 0o777) | 0o711);
        else {
          throw new ServiceError({
            service: 'Builder',
            kind: 'misconfigured',
            message: `the builder's user namespace cannot reach ${dir}: ${at} is not searchable by other users`,
            hint: `chmod o+x ${at}, or put the builder's work and cache directories elsewhere`,
          });
        }
      }
    }
  }
}

/** Resolves `rel` inside `base` following links, refusing anything that ends outside. */
async function resolvedInside(base: string, rel: string, what: string): Promise<string> {
  const root = await realpath(base);
  const target = await realpath(join(base, rel)).catch(() => undefined);
  if (target === undefined) throw invalid(`the ${what} "${rel}" does not exist at this commit`);
  if (target !== root && !target.startsWith(root + sep)) throw invalid(`the ${what} "${rel}" leads out of the source`);
  return target;
}

export async function runBuild(
  spec: BuildSpec,
  settings: BuilderSettings,
  opts: BuildOptions = {},
): Promise<BuildResult> {
  const started = Date.now();
  const paths = checkSpec(spec);
  const target = parseImageReference(spec.image);
  if (opts.signal?.aborted) throw new Aborted(opts.signal.reason);

  // One signal for cancel and timeout; `timedOut` says which fired.
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort(new Error(`the build ran past its timeout of ${Math.round(spec.timeoutMs / 1000)}s`));
  }, spec.timeoutMs);
  const onCancel = () => controller.abort(opts.signal?.reason);
  opts.signal?.addEventListener('abort', onCancel, { once: true });
  const signal = controller.signal;

  const pullHosts = [...new Set([settings.baseRegistry, target.host].filter((h): h is string => !!h))];
  const auth = authFile(settings.registryAuths, [
    target.host,
    ...(settings.baseRegistry ? [settings.baseRegistry] : []),
  ]);
  const log = new BuildLog([...auth.secrets, ...sourceSecrets(settings)], opts.onLog);
  const buildDir = join(settings.workDir, `${spec.buildId}-${randomBytes(4).toString('hex')}`);
  let sandbox: Sandbox | undefined;
  let release: (() => Promise<void>) | undefined;
  try {
    if (settings.userNamespace) await checkReachable([settings.workDir, settings.cacheDir]);
    // Only the build's own directory is private: a recursive mkdir would make the work directory private too.
    await mkdir(settings.workDir, { recursive: true });
    await mkdir(buildDir, { mode: 0o700 });
    const src = join(buildDir, 'src');
    await fetchSource(spec.source, src, settings, log, signal);
    const context = await resolvedInside(src, paths.context, 'build context');
    const dockerfile = await resolvedInside(context, paths.dockerfile, 'Dockerfile');
    if (!(await lstat(dockerfile)).isFile()) throw invalid(`the Dockerfile "${spec.dockerfile}" is not a file`);
    const text = await readFile(dockerfile);
    if (text.length > MAX_DOCKERFILE_BYTES)
      throw invalid(`the Dockerfile is larger than ${MAX_DOCKERFILE_BYTES} bytes`);
    const bases = baseImages(text.toString('utf8'), spec.buildArgs ?? {});
    if (settings.baseRegistry) {
      // Air-gapped: images come from the base registry (docker.io and short names resolve there) or the image's own
      // registry. Refused here, before any connection; the signature policy given to buildah refuses them too.
      const allowed = new Set(pullHosts.map((h) => h.toLowerCase()));
      const elsewhere = bases.filter((b) => !allowed.has(pullHost(b, settings.baseRegistry)));
      if (elsewhere.length) {
        throw invalid(
          `the Dockerfile of ${spec.app} uses ${elsewhere.join(', ')}, from registries this installation does not ` +
            `pull from (rejected by policy: only ${[...allowed].join(' and ')})`,
        );
      }
    }

    const cache = await acquireCache(settings.cacheDir, spec.app, spec.buildId, ownerOf(settings));
    release = cache.release;
    sandbox = await createSandbox({
      userNamespace: settings.userNamespace,
      isolateNetwork: settings.network === 'none',
      stateDir: cache.home,
    }).catch((err: unknown) => {
      throw new ServiceError({
        service: 'Builder',
        kind: 'misconfigured',
        message: `the builder cannot isolate the build: ${(err as Error).message}`,
        hint: settings.userNamespace
          ? 'a builder makes user namespaces as root of the host; inside a pod with hostUsers: false, turn userNamespace off'
          : 'the builder needs CAP_SYS_ADMIN in its own user namespace (root of a pod with hostUsers: false)',
        cause: err,
      });
    });
    const conf = join(buildDir, 'conf');
    await mkdir(join(conf, 'tmp'), { recursive: true });
    await writeFile(join(conf, 'registries.conf'), registriesConf(settings.baseRegistry, settings.insecureHosts));
    // `bud` pulls nothing (--pull=never: the bases are pulled above); with the docker.io rewrite in its registries
    // configuration buildah 1.28 no longer finds `node:20` among the local images, so it gets none.
    await writeFile(join(conf, 'registries-local.conf'), registriesConf(undefined, []));
    await writeFile(
      join(conf, 'policy.json'),
      // docker.io is allowed by name only: registries.conf sends it to the base registry (no fallback).
      signaturePolicy(settings.baseRegistry ? ['docker.io', ...pullHosts.map((h) => h.toLowerCase())] : undefined),
    );
    // The credentials file: 0600, for the image's host (and the base registry's), removed with the build dir.
    await writeFile(join(conf, 'auth.json'), auth.json, { mode: 0o600 });
    if (sandbox.owner) await chownTree(buildDir, sandbox.owner);

    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: cache.home,
      TMPDIR: join(conf, 'tmp'),
      REGISTRY_AUTH_FILE: join(conf, 'auth.json'),
      CONTAINERS_REGISTRIES_CONF: join(conf, 'registries.conf'),
      BUILDAH_ISOLATION: 'chroot',
    };
    const buildah = (args: string[], network: boolean, localOnly = false) =>
      runCommand('buildah', [...globalFlags(cache), ...args], {
        env: localOnly ? { ...env, CONTAINERS_REGISTRIES_CONF: join(conf, 'registries-local.conf') } : env,
        log,
        signal,
        sandbox,
        inSandbox: { network },
      });
    const policy = ['--signature-policy', join(conf, 'policy.json')];
    const insecure = new Set(settings.insecureHosts.map((h) => h.toLowerCase()));

    for (const base of bases) {
      log.line(`Pulling ${base}`);
      // Qualified here (short names are docker.io's): no short-name alias lookup or cache is involved.
      const res = await buildah(
        ['pull', '--quiet', '--remove-signatures', '--policy', 'always', ...policy, qualify(base)],
        true,
      );
      if (res.code !== 0) {
        const kind = pullFailureKind(log.tail());
        throw new ServiceError({
          service: kind === 'unavailable' ? 'Registry' : 'Builder',
          kind,
          message: `pulling the base image ${base} from ${pullHost(base, settings.baseRegistry)} failed:\n${log.tail()}`,
          hint:
            kind === 'not-found' && settings.baseRegistry
              ? `seed it into ${settings.baseRegistry} (flui's base-image import)`
              : undefined,
        });
      }
    }

    const local = `localhost/flui-build/${spec.buildId.toLowerCase()}:${randomBytes(4).toString('hex')}`;
    const bud = await buildah(
      [
        ...(process.env.FLUI_BUILDAH_DEBUG ? ['--log-level=debug'] : []),
        'bud',
        '--layers',
        '--isolation',
        'chroot',
        '--pull=never',
        ...policy,
        '-f',
        dockerfile,
        ...buildArgFlags(spec.buildArgs ?? {}),
        '-t',
        local,
        context,
      ],
      settings.network !== 'none',
      true,
    );
    if (bud.code !== 0) {
      throw invalid(`the build of ${spec.app} failed (buildah exit ${bud.code ?? bud.signal}):\n${log.tail()}`);
    }

    let digest: string | undefined;
    for (const tag of spec.tags) {
      const digestFile = join(conf, `digest-${tag}`);
      const to = `docker://${target.host}/${target.repository}:${tag}`;
      log.line(`Pushing ${target.host}/${target.repository}:${tag}`);
      const tls = insecure.has(target.host.toLowerCase()) ? ['--tls-verify=false'] : [];
      const res = await buildah(['push', '--quiet', ...tls, ...policy, '--digestfile', digestFile, local, to], true);
      if (res.code !== 0) {
        const kind = pushFailureKind(log.tail());
        throw new ServiceError({
          service: 'Registry',
          kind,
          message: `pushing ${target.host}/${target.repository}:${tag} failed:\n${log.tail()}`,
          hint: kind === 'unauthorized' ? `check the builder's registry credentials for ${target.host}` : undefined,
        });
      }
      const pushed = (await readFile(digestFile, 'utf8')).trim();
      if (!/^sha256:[0-9a-f]{64}$/.test(pushed)) throw invalid(`buildah wrote no digest for ${tag}`);
      if (digest && pushed !== digest) log.line(`warning: tag ${tag} got ${pushed}, the first tag ${digest}`);
      digest ??= pushed;
    }
    // The build's own local name goes, but not the image: `rmi` of an image's only name deletes it with the cached
    // layers under it, so it first gets the app's stable name (a later build moves that name; the layers stay).
    await buildah(['tag', local, 'localhost/flui-build/cache:latest'], true);
    await buildah(['rmi', local], true);
    log.line(`Pushed ${target.host}/${target.repository}@${digest}`);
    return {
      image: `${target.host}/${target.repository}`,
      digest: digest!,
      tags: [...spec.tags],
      durationMs: Date.now() - started,
      cachedSteps: log.cachedSteps,
      logTail: log.tail(),
    };
  } catch (err) {
    if (signal.aborted) {
      if (timedOut) {
        // Permanent (`invalid`): the same build on the same builder would run just as long; a step that hangs or
        // outgrew the limit needs a person (raise the manifest's build timeout, or fix the step), not a retry that
        // holds a builder for another full timeout.
        throw new ServiceError({
          service: 'Builder',
          kind: 'invalid',
          message: `the build of ${spec.app} ran past its timeout of ${Math.round(spec.timeoutMs / 1000)}s and was stopped:\n${log.tail()}`,
          hint: 'raise the build timeout, or find the step that hangs',
        });
      }
      throw err instanceof Aborted ? err : new Aborted(opts.signal?.reason);
    }
    if (err instanceof ServiceError) throw err;
    throw new ServiceError({
      service: 'Builder',
      kind: 'unavailable',
      message: `the builder failed while building ${spec.app}: ${(err as Error).message}`,
      cause: err,
    });
  } finally {
    clearTimeout(timer);
    opts.signal?.removeEventListener('abort', onCancel);
    await sandbox?.close();
    await release?.();
    await rm(buildDir, { recursive: true, force: true }).catch(() => undefined);
    await evictCaches(settings.cacheDir, settings.cacheBudgetBytes).catch(() => undefined);
  }
}
