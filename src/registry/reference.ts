/**
 * Image references: `host[:port]/path[:tag][@sha256:digest]`. Flui always names the registry host explicitly
 * (no implicit Docker Hub), so parsing needs no guessing. The grammar is src/manifest/names.ts's.
 */
import { ServiceError } from '../errors.ts';
import { IMAGE_REFERENCE } from '../manifest/names.ts';

export interface ImageReference {
  /** `host[:port]` */
  host: string;
  /** Repository path inside the registry, e.g. `acme/hello`. */
  repository: string;
  tag?: string;
  digest?: string;
}

export function parseImageReference(ref: string): ImageReference {
  const m = IMAGE_REFERENCE.exec(ref);
  if (!m) {
    throw new ServiceError({
      service: 'Registry',
      kind: 'invalid',
      message: `invalid image reference "${ref}": expected host[:port]/path[:tag][@sha256:digest]`,
    });
  }
  const [, host, repository, tag, digest] = m as unknown as [string, string, string, string?, string?];
  return { host, repository, tag, digest };
}

/** The registry host of an image or repository reference. */
export function imageHost(ref: string): string {
  return parseImageReference(ref).host;
}

/** `host/repo@digest`: the form deploys are pinned to. */
export function pinnedReference(ref: ImageReference, digest: string): string {
  return `${ref.host}/${ref.repository}@${digest}`;
}
