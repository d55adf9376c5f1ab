/**
 * How Kubernetes names and OCI image references are spelled: one home for the grammar that the manifest's and the
 * client's zod schemas, the workflow's contract (deploy ids) and the registry client all check against. Plain
 * regular expressions, no zod, so workflow code may use them.
 */

/** RFC 1123 label, as Kubernetes requires for namespaces, Deployments and Services: at most 63 characters. */
export const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
/** The same label as a fragment, for patterns that embed one (deploy ids). */
export const DNS_LABEL_SOURCE = '[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?';

const DIGEST_SOURCE = 'sha256:[a-f0-9]{64}';
const HOST_SOURCE = '[a-zA-Z0-9.-]+(?::[0-9]+)?';
// Lowercase path components separated by `.`, `_`, `-` or `/`, as the OCI distribution spec allows.
const PATH_SOURCE = '[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*';
const TAG_SOURCE = '[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}';

/** A content digest, the way Flui pins every image. */
export const DIGEST = new RegExp(`^${DIGEST_SOURCE}$`);
/** `host[:port]/path`: where images of an app are pushed (no tag, no digest). */
export const IMAGE_REPOSITORY = new RegExp(`^${HOST_SOURCE}/${PATH_SOURCE}$`);
/** `host[:port]/path[:tag][@digest]`, capturing host, path, tag and digest. */
export const IMAGE_REFERENCE = new RegExp(
  `^(${HOST_SOURCE})/(${PATH_SOURCE})(?::(${TAG_SOURCE}))?(?:@(${DIGEST_SOURCE}))?$`,
);
/** An image reference that ends in a digest: what the cluster is given. */
export const PINNED_IMAGE = new RegExp(`^${HOST_SOURCE}/${PATH_SOURCE}(?::${TAG_SOURCE})?@${DIGEST_SOURCE}$`);

export const isDnsLabel = (name: string): boolean => DNS_LABEL.test(name);
export const isDigest = (digest: string): boolean => DIGEST.test(digest);
