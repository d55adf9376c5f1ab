/**
 * What the build tests share: builder settings over fresh directories, base images seeded into a real registry from
 * dev/base-images.ts (the way an air-gapped installation is seeded), a look into /proc for processes a build left
 * behind, and reading back what the registry holds.
 */
import { chmod, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { buildBaseImage, type BaseImageKind } from '../../dev/base-images.ts';
import { defaultUserNamespace, importBaseImage, type BuilderSettings } from '../../src/build/index.ts';

/** A scratch root for the suite (searchable by the builder's user namespace), created now and removed after it. */
export function useBuilderRoot(): () => string {
  let dir: string | undefined;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'flui-build-test-'));
    await chmod(dir, 0o711);
  });
  after(() => (dir ? rm(dir, { recursive: true, force: true }) : undefined));
  return () => {
    if (!dir) throw new Error('builder root not created yet: call the getter inside a test or hook');
    return dir;
  };
}

export function settingsFor(root: string, registryHost: string, more: Partial<BuilderSettings> = {}): BuilderSettings {
  return {
    workDir: join(root, 'work'),
    cacheDir: join(root, 'cache'),
    cacheBudgetBytes: 4 * 2 ** 30,
    network: 'none',
    baseRegistry: registryHost,
    registryAuths: {},
    insecureHosts: [registryHost],
    userNamespace: defaultUserNamespace(),
    ...more,
  };
}

const layouts = new Map<string, Promise<string>>();

/** Builds the base image once per root and pushes it to `host` as `library/<kind>:<tag>`. */
export async function seedBase(
  kind: BaseImageKind,
  root: string,
  settings: BuilderSettings,
  tag = kind === 'node' ? '20' : 'latest',
): Promise<string> {
  const dir = join(root, `base-${kind}`);
  let layout = layouts.get(dir);
  if (!layout) {
    layout = buildBaseImage(kind, dir).then(() => dir);
    layouts.set(dir, layout);
  }
  const { digest } = await importBaseImage(await layout, `${settings.baseRegistry}/library/${kind}:${tag}`, settings);
  return digest;
}

/** Pids whose command line contains `marker` (a build's RUN step left running). */
export async function processesWith(marker: string): Promise<number[]> {
  const out: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const cmd = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmd.replace(/\0/g, ' ').includes(marker)) out.push(Number(entry));
  }
  return out;
}

const ACCEPT = [
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

/** The registry's digest for `repo:tag` (Docker-Content-Digest), or undefined when it has no such tag. */
export async function registryDigest(url: string, repo: string, tag: string): Promise<string | undefined> {
  const res = await fetch(`${url}/v2/${repo}/manifests/${tag}`, { method: 'HEAD', headers: { accept: ACCEPT } });
  if (res.status === 404) return undefined;
  if (res.status !== 200) throw new Error(`registry answered ${res.status} for ${repo}:${tag}`);
  return res.headers.get('docker-content-digest') ?? undefined;
}

/** The image config's labels of `repo:tag` (what a Dockerfile's LABEL lines wrote). */
export async function imageLabels(url: string, repo: string, tag: string): Promise<Record<string, string>> {
  const manifest = (await (
    await fetch(`${url}/v2/${repo}/manifests/${tag}`, { headers: { accept: ACCEPT } })
  ).json()) as { config: { digest: string } };
  const config = (await (await fetch(`${url}/v2/${repo}/blobs/${manifest.config.digest}`)).json()) as {
    config?: { Labels?: Record<string, string> };
  };
  return config.config?.Labels ?? {};
}
