/**
 * The build engine's vocabulary: what to build (a spec, from the manifest and the deploy), where and how (the builder's
 * settings, from the installation's configuration), and what came out. Nothing here knows Temporal.
 */
import type { GitHubAuth } from '../config.ts';
import type { RegistryAuths } from '../registry/auths.ts';
import type { GitCredentials } from './git-credentials.ts';

export type BuildSource =
  | { kind: 'github'; repository: string /* owner/name */; commit: string /* 40-hex sha */ }
  | { kind: 'git'; url: string /* http(s) or git:// */; commit: string };

export interface BuildSpec {
  /** The run key (safe charset): names the work directory and the local image. */
  buildId: string;
  /** `<namespace>.<name>`: keys the layer cache. */
  app: string;
  source: BuildSource;
  /** From the manifest (hostile): a directory inside the source. */
  context: string;
  /** From the manifest (hostile): a file inside the context. */
  dockerfile: string;
  /** From the manifest (hostile): names are checked, values passed as one argument each. */
  buildArgs: Record<string, string>;
  /** The repository pushed to, e.g. `127.0.0.1:5001/acme/hello`. */
  image: string;
  /** Pushed in this order, e.g. `[ciImageTag(runKey), commit]`. */
  tags: string[];
  timeoutMs: number;
}

export interface BuilderSettings {
  /** Scratch space: one subdirectory per build, removed after it. */
  workDir: string;
  /** Per-app layer caches (buildah storage), evicted least recently used first beyond `cacheBudgetBytes`. */
  cacheDir: string;
  cacheBudgetBytes: number;
  /** What RUN steps may reach: nothing (`none`, the default) or the builder's own network (`host`). */
  network: 'none' | 'host';
  /** Where docker.io and unqualified FROM images resolve (`host[:port]`); set, it is the only registry pulled from. */
  baseRegistry?: string;
  /** Credentials by registry host; each goes to its own host only. */
  registryAuths: RegistryAuths;
  /** Registry hosts spoken to over plain HTTP / without TLS verification. */
  insecureHosts: string[];
  github?: { apiUrl: string; auth: GitHubAuth };
  /** Credentials for plain git sources, by host (`host[:port]`); sent to that host, over their protocol, only. */
  gitAuth?: GitCredentials;
  /**
   * Run buildah as root of a fresh user namespace with a 65,536-id map (host ids 100000–165535). Needs the builder
   * to be root of the initial user namespace; a builder already in a user namespace of its own (a pod with
   * `hostUsers: false`) sets it false and is that root already. See `defaultUserNamespace`.
   */
  userNamespace: boolean;
}

export interface BuildResult {
  /** The repository pushed to. */
  image: string;
  /** `sha256:…`, from buildah's digest file. */
  digest: string;
  tags: string[];
  durationMs: number;
  /** Steps buildah took from its layer cache. */
  cachedSteps: number;
  /** The last lines of the build's output. */
  logTail: string;
}

export interface BuildOptions {
  signal?: AbortSignal;
  onLog?: (line: string) => void;
}
