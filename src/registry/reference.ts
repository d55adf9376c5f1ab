/**
 * Image references: `host[:port]/path[:tag][@sha256:digest]`. Flui always names the registry host explicitly
 * (no implicit Docker Hub), so parsing needs no guessing.
 */

export interface ImageReference {
  /** `host[:port]` */
  host: string;
  /** Repository path inside the registry, e.g. `acme/hello`. */
  repository: string;
  tag?: string;
  digest?: string;
}

const REFERENCE =
  /^([a-zA-Z0-9.-]+(?::[0-9]+)?)\/([a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*)(?::([A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?(?:@(sha256:[a-f0-9]{64}))?$/;

export function parseImageReference(ref: string): ImageReference {
  const m = REFERENCE.exec(ref);
  if (!m) throw new Error(`invalid image reference "${ref}": expected host[:port]/path[:tag][@sha256:digest]`);
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
