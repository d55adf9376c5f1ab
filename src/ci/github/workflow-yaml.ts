/**
 * Writes the YAML of the workflow files Flui generates so that every YAML parser reads the same document from them.
 *
 * GitHub parses workflows with a YAML 1.1 parser (YamlDotNet), for which `\r`, `\n`, U+0085, U+2028 and U+2029 all
 * end a line and words such as `on`, `yes` or `off` are booleans; most tools, and Flui's own tests, read YAML 1.2.
 * A general-purpose YAML writer picks whatever spelling is valid in 1.2 (it writes U+2028 raw inside a plain
 * scalar), so a value from a manifest could read as one thing to Flui and as extra steps or jobs to GitHub. Here:
 * - a string is written plain only when it is unambiguous in both versions: it starts with a letter, holds only
 *   letters, digits and `._/@-`, and is not one of YAML 1.1's boolean or null words;
 * - a multi-line string of printable ASCII whose lines carry no trailing blanks is written as a literal block (`|-`);
 * - everything else is double-quoted, with every character outside printable ASCII escaped (`\uXXXX`), except
 *   characters beyond the Basic Multilingual Plane, which stay raw: they are printable in both versions and never
 *   break a line, whereas their escapes are misread by some parsers (`\U` by PyYAML ports, surrogate pairs by
 *   YamlDotNet before 13.3.1). Lone surrogates cannot be written in YAML at all and are refused.
 * So apart from those characters the output is printable ASCII, and nothing a value holds can end a line.
 */

/** A `uses:`-style value followed by a comment on the same line (the version an action's commit SHA stands for). */
export class Commented {
  constructor(
    readonly value: string,
    readonly comment: string,
  ) {
    if (!/^[\x20-\x7e]*$/.test(comment)) throw new Error(`a YAML comment must be printable ASCII: ${comment}`);
  }
}

export type YamlValue = string | number | boolean | Commented | YamlValue[] | { [key: string]: YamlValue | undefined };

/** Thrown for a string YAML cannot hold (a lone UTF-16 surrogate). */
export class UnwritableStringError extends Error {
  constructor(readonly value: string) {
    super('the text contains a lone UTF-16 surrogate, which no YAML file can hold');
    this.name = 'UnwritableStringError';
  }
}

const PLAIN = /^[A-Za-z][A-Za-z0-9._/@-]*$/;
/** Words a YAML 1.1 parser resolves to booleans or null when they are plain. */
const YAML11_WORDS = new Set(['y', 'yes', 'n', 'no', 'true', 'false', 'on', 'off', 'null']);
/** A line of a literal block: printable ASCII, not ending in a blank (a blank-only line would be ambiguous). */
const LITERAL_LINE = /^ *[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?$/;

function isPlain(s: string): boolean {
  return PLAIN.test(s) && !YAML11_WORDS.has(s.toLowerCase());
}

/** Lines of a literal block (`|-`), or undefined when the string cannot be one. */
function literalLines(s: string): string[] | undefined {
  if (!s.includes('\n')) return undefined;
  const lines = s.split('\n');
  // The first line fixes the block's indentation (so no leading blank); the last must hold text (`|-` strips it).
  if (lines[0]!.startsWith(' ') || lines.at(-1) === '') return undefined;
  return lines.every((l) => l === '' || LITERAL_LINE.test(l)) ? lines : undefined;
}

const hex4 = (code: number) => `\\u${code.toString(16).toUpperCase().padStart(4, '0')}`;

/** A double-quoted scalar: printable ASCII (and astral characters) only. */
export function doubleQuoted(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const code = s.charCodeAt(i);
    if (code >= 0xd800 && code <= 0xdbff) {
      const low = s.charCodeAt(i + 1);
      if (!(low >= 0xdc00 && low <= 0xdfff)) throw new UnwritableStringError(s);
      out += s[i]! + s[i + 1]!;
      i++;
    } else if (code >= 0xdc00 && code <= 0xdfff) {
      throw new UnwritableStringError(s);
    } else if (code === 0x22) out += '\\"';
    else if (code === 0x5c) out += '\\\\';
    else if (code === 0x0a) out += '\\n';
    else if (code >= 0x20 && code <= 0x7e) out += s[i];
    else out += hex4(code);
  }
  return `${out}"`;
}

function scalar(value: string | number | boolean): string {
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new Error(`only integers are written, not ${value}`);
    return String(value);
  }
  return isPlain(value) ? value : doubleQuoted(value);
}

const isCollection = (v: YamlValue): v is YamlValue[] | { [key: string]: YamlValue | undefined } =>
  typeof v === 'object' && !(v instanceof Commented);

/** `key: value` (or `- value`) text after the indicator, plus the lines that follow it. */
function inline(value: YamlValue, indent: string): { head: string; rest: string[] } {
  if (value instanceof Commented) return { head: ` ${scalar(value.value)} # ${value.comment}`, rest: [] };
  if (typeof value === 'string') {
    const lines = literalLines(value);
    if (lines) return { head: ' |-', rest: lines.map((l) => (l === '' ? '' : `${indent}  ${l}`)) };
  }
  if (!isCollection(value)) return { head: ` ${scalar(value)}`, rest: [] };
  if (Array.isArray(value)) {
    return value.length === 0 ? { head: ' []', rest: [] } : { head: '', rest: sequence(value, indent) };
  }
  const body = mapping(value, `${indent}  `);
  return body.length === 0 ? { head: ' {}', rest: [] } : { head: '', rest: body };
}

function mapping(map: { [key: string]: YamlValue | undefined }, indent: string): string[] {
  const out: string[] = [];
  for (const [key, value] of Object.entries(map)) {
    if (value === undefined) continue;
    const { head, rest } = inline(value, indent);
    out.push(`${indent}${scalar(key)}:${head}`, ...rest);
  }
  return out;
}

/** A block sequence, its dashes at `indent` + 2 (the style GitHub's documentation uses). */
function sequence(items: YamlValue[], indent: string): string[] {
  const inner = `${indent}  `;
  const out: string[] = [];
  for (const item of items) {
    if (isCollection(item) && !Array.isArray(item) && Object.keys(item).length > 0) {
      const lines = mapping(item, `${inner}  `);
      out.push(`${inner}- ${lines[0]!.trimStart()}`, ...lines.slice(1));
    } else {
      const { head, rest } = inline(item, inner);
      out.push(`${inner}-${head}`, ...rest);
    }
  }
  return out;
}

/** The document: `comment` lines (each prefixed with `# `), then the mapping. */
export function writeWorkflowYaml(doc: { [key: string]: YamlValue | undefined }, comment: string[] = []): string {
  for (const line of comment) new Commented('', line); // same rule as inline comments
  return [...comment.map((l) => `# ${l}`), ...mapping(doc, '')].join('\n') + '\n';
}
