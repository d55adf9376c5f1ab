/**
 * How Kubernetes names and OCI image references are spelled: one home for the grammar that the manifest's and the
 * client's zod schemas, the workflow's contract (deploy ids) and the registry client all check against. Plain
 * regular expressions, no zod, so workflow code may use them.
 */

/** RFC 1123 label, as Kubernetes requires for namespaces, Deployments and Services: at most 63 characters. */
export const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
/** The same label as a fragment, for patterns that embed one (deploy ids). */
export const DNS_LABEL_SOURCE = '[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?';

/** RFC 1123 subdomain, as Kubernetes requires for most object names (Secrets, ConfigMaps): at most 253 characters. */
export const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** A key of a Secret or ConfigMap (Kubernetes also refuses "." and ".." and a leading ".."). */
export const SECRET_KEY = /^[-._a-zA-Z0-9]{1,253}$/;

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

/**
 * Characters no manifest string may hold, because they change how the text around them is read: C0 and C1 control
 * characters and DEL (terminal escapes, NUL, `\r`, `\n`, U+0085), the Unicode line and paragraph separators (YAML 1.1
 * parsers, like the one GitHub's runner uses, break lines at U+2028/U+2029 and U+0085), and the bidirectional
 * controls that make text display in another order than it runs.
 */
const UNSAFE_CHARACTERS =
  '\\u0000-\\u001f\\u007f-\\u009f\\u2028\\u2029\\u202a-\\u202e\\u2066-\\u2069\\u200e\\u200f\\u061c';
export const UNSAFE_CHARACTER = new RegExp(`[${UNSAFE_CHARACTERS}]`);
/** A string without any {@link UNSAFE_CHARACTER}. */
export const SAFE_TEXT = new RegExp(`^[^${UNSAFE_CHARACTERS}]*$`);

const CHARACTER_NAMES: Record<number, string> = {
  0x09: 'a tab',
  0x0a: 'a line break',
  0x0d: 'a carriage return',
  0x1b: 'an escape character',
  0x85: 'a next-line character, which YAML 1.1 reads as a line break',
  0x2028: 'a line separator, which YAML 1.1 reads as a line break',
  0x2029: 'a paragraph separator, which YAML 1.1 reads as a line break',
};

/** `U+2028`, the way Unicode names a code point. */
export function codePoint(c: number): string {
  return `U+${c.toString(16).toUpperCase().padStart(4, '0')}`;
}

/**
 * Why `value` is unsafe, for people: the first offending character by code point and position (never the character
 * itself, which a terminal would act on), or undefined when there is none.
 */
export function describeUnsafeCharacter(value: string): string | undefined {
  const m = UNSAFE_CHARACTER.exec(value);
  if (!m) return undefined;
  const c = m[0].charCodeAt(0);
  const what =
    CHARACTER_NAMES[c] ??
    (c >= 0x2000 || c === 0x061c
      ? 'a bidirectional control, which shows text in another order than it is read'
      : 'a control character');
  return (
    `contains ${codePoint(c)} (${what}) at character ${m.index + 1}: control characters, line separators and ` +
    'bidirectional controls are not allowed'
  );
}

/** `value` with every {@link UNSAFE_CHARACTER} written as `\u{…}`: safe to print in a message. */
export function printable(value: string): string {
  return value.replace(new RegExp(`[${UNSAFE_CHARACTERS}]`, 'g'), (ch) => `\\u{${ch.charCodeAt(0).toString(16)}}`);
}
