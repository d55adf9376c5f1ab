/**
 * `flui base-images import <archive> <name:tag>`: seeds the installation's registry with a base image from an OCI
 * layout, an oci-archive or a docker-archive tarball (skopeo copies it), so self-hosted builds of an offline
 * installation resolve their FROM lines. A name without a registry host (`node:20`, `busybox`) goes where builds look
 * for Docker Hub's images: FLUI_BASE_REGISTRY (`node:20` → `<base registry>/library/node:20`).
 *
 * It runs where the worker's configuration is (it pushes with the registry credential of REGISTRY_AUTH_FILE or
 * REGISTRY_USERNAME/REGISTRY_PASSWORD, to that registry's host only); it needs no Temporal.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { FluiError } from '../client/index.ts';
import { ServiceError } from '../errors.ts';
import { type Command, type Context, type Input } from './command.ts';
import { EXIT, UsageError } from './exit.ts';
import { print } from './output.ts';

export interface BaseImagesOptions {
  archive: string;
  /** As given. */
  name: string;
}

const NAME = /^[a-z0-9]+([._-][a-z0-9]+)*(\/[a-z0-9]+([._-][a-z0-9]+)*)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?$/;
const HOST = /^([A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+|localhost|[A-Za-z0-9.-]+:[0-9]{1,5})$/;

export function parse(input: Input): BaseImagesOptions {
  if (input.target !== 'import') throw new UsageError(`unknown sub-command "${input.target}" (import)`);
  const [archive, name] = input.args ?? [];
  if (!archive || !name) throw new UsageError('usage: flui base-images import <archive> <name:tag>');
  const [first, ...rest] = name.split('/');
  const repository = rest.length && HOST.test(first!) ? rest.join('/') : name;
  if (!NAME.test(repository)) throw new UsageError(`"${name}" is not an image name such as node:20 or busybox:1.36`);
  return { archive, name };
}

/** Where `name` goes: as given when it names a registry host; under the base registry otherwise. */
export function baseImageTarget(name: string, baseRegistry: string | undefined): string {
  const [first, ...rest] = name.split('/');
  if (rest.length && HOST.test(first!)) return name;
  if (!baseRegistry) {
    throw new FluiError(
      `"${name}" names no registry and FLUI_BASE_REGISTRY is not set: set it, or give the full name (registry/${name})`,
      'invalid',
    );
  }
  const tagged = /:[^/]+$/.test(name) ? name : `${name}:latest`;
  return `${baseRegistry}/${rest.length ? tagged : `library/${tagged}`}`;
}

export async function run(o: BaseImagesOptions & Context): Promise<number> {
  const archive = resolve(o.archive);
  if (!existsSync(archive)) throw new FluiError(`${o.archive} does not exist`, 'invalid');
  // The worker's configuration: the registry credential (for its own host only) and the base registry.
  const [{ loadConfig }, { builderSettings }, { importBaseImage }] = await Promise.all([
    import('../config.ts'),
    import('../ci/self-hosted/settings.ts'),
    import('../build/index.ts'),
  ]);
  const config = loadConfig(process.env);
  const target = baseImageTarget(o.name, config.build.baseRegistry);
  if (!o.json) o.io.err(`importing ${o.archive} as ${target}…\n`);
  let digest: string;
  try {
    ({ digest } = await importBaseImage(archive, target, builderSettings(config)));
  } catch (err) {
    if (!(err instanceof ServiceError)) throw err;
    const kind = err.retryable ? 'unavailable' : err.kind === 'not-found' ? 'not-found' : 'failed';
    throw new FluiError(err.message, kind);
  }
  print(o.io, o.json, { archive, image: target, digest }, () => `${target}@${digest}\n`);
  return EXIT.ok;
}

export const command: Command<BaseImagesOptions> = { parse, run };
