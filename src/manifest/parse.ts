/**
 * Reading manifests: YAML in, a validated {@link Manifest} out, or a {@link ManifestError} that names the file, the
 * line and column, and the field, so a user can fix it without guessing.
 */
import { readFile } from 'node:fs/promises';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node } from 'yaml';
import type { z } from 'zod';
import { printable } from './names.ts';
import { manifestSchema, API_VERSION, type Manifest } from './schema.ts';

export interface ManifestProblem {
  /** Dotted path of the field, e.g. `spec.source.repository`; empty for the document itself. */
  field: string;
  message: string;
  line?: number;
  column?: number;
}

export class ManifestError extends Error {
  readonly file: string;
  readonly problems: ManifestProblem[];

  constructor(file: string, problems: ManifestProblem[]) {
    super(
      `${file}: invalid manifest:\n` +
        problems
          .map(
            (p) =>
              `  ${p.line !== undefined ? `${p.line}:${p.column ?? 1}` : '-'}  ${p.field || '(document)'}: ${p.message}`,
          )
          .join('\n'),
    );
    this.name = 'ManifestError';
    this.file = file;
    this.problems = problems;
  }
}

/** Parses and validates manifest text. `file` is only used in messages. */
export function parseManifest(text: string, file = '<manifest>'): Manifest {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ManifestError(
      file,
      doc.errors.map((e) => {
        const pos = lineCounter.linePos(e.pos[0]);
        return {
          field: '',
          message: `YAML: ${printable(e.message.split('\n')[0] ?? '')}`,
          line: pos.line,
          column: pos.col,
        };
      }),
    );
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    // Unresolved aliases and alias bombs surface only when the document is converted.
    throw new ManifestError(file, [{ field: '', message: `YAML: ${printable((err as Error).message)}` }]);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ManifestError(file, [
      { field: '', message: `expected a mapping with apiVersion: ${API_VERSION} and kind: Application or CatalogApp` },
    ]);
  }
  const result = manifestSchema.safeParse(value, { reportInput: true });
  if (result.success) return result.data;
  throw new ManifestError(file, describeIssues(result.error.issues, doc.contents, lineCounter));
}

/** Reads and validates a manifest file. */
export async function loadManifest(path: string): Promise<Manifest> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ManifestError(path, [
      { field: '', message: code === 'ENOENT' ? 'file not found' : `cannot read: ${(err as Error).message}` },
    ]);
  }
  return parseManifest(text, path);
}

/** Validates an already parsed object (e.g. from the client library). */
export function validateManifest(value: unknown, source = '<manifest>'): Manifest {
  const result = manifestSchema.safeParse(value, { reportInput: true });
  if (result.success) return result.data;
  throw new ManifestError(source, describeIssues(result.error.issues));
}

function describeIssues(issues: z.core.$ZodIssue[], root?: unknown, lineCounter?: LineCounter): ManifestProblem[] {
  return issues.flatMap(chosenBranch).map((issue) => {
    // Keys are the user's text: a key with a control character in it is printed escaped, never acted on.
    const problem: ManifestProblem = {
      field: issue.path.map((k) => printable(String(k))).join('.'),
      message: humanMessage(issue),
    };
    if (lineCounter) {
      const node = nearestNode(root, issue.path);
      if (node?.range) {
        const pos = lineCounter.linePos(node.range[0]);
        problem.line = pos.line;
        problem.column = pos.col;
      }
    }
    return problem;
  });
}

/**
 * A value that matched no alternative of a union (an env value: a string or a secret reference): when it has the
 * type of one alternative, what that one says is what the user needs (the string holds a control character, the
 * reference lacks its key), at its full path; otherwise the union's own words.
 */
function chosenBranch(issue: z.core.$ZodIssue): z.core.$ZodIssue[] {
  if (issue.code !== 'invalid_union' || issue.path.length === 0 || issue.path.at(-1) === 'kind') return [issue];
  const typed = issue.errors.filter((branch) => !branch.some((i) => i.code === 'invalid_type' && i.path.length === 0));
  if (typed.length !== 1) return [issue];
  return typed[0]!.flatMap((i) => chosenBranch({ ...i, path: [...issue.path, ...i.path] } as z.core.$ZodIssue));
}

function humanMessage(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'invalid_type':
      return issue.input === undefined ? `is required (${issue.expected})` : `must be a ${issue.expected}`;
    case 'unrecognized_keys':
      return `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${printable(k)}"`).join(', ')}`;
    case 'invalid_union':
      if (issue.path.at(-1) === 'kind' || issue.path.length === 0) return 'kind must be Application or CatalogApp';
      return issue.message;
    case 'invalid_value':
      return `must be ${issue.values.map((v) => JSON.stringify(v)).join(' or ')}`;
    case 'invalid_key':
      return `is not a valid name: ${issue.issues.map((i) => i.message).join('; ')}`;
    default:
      return issue.message;
  }
}

/** The YAML node at `path`, or the deepest existing ancestor (a missing field points at its parent). */
function nearestNode(root: unknown, path: PropertyKey[]): Node | undefined {
  let node = root as Node | undefined;
  for (const key of path) {
    let next: unknown;
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(key));
      // Point at the key for unknown/mistyped fields so the column lands on the name the user typed.
      next = pair ? (pair.value ?? pair.key) : undefined;
    } else if (isSeq(node) && typeof key === 'number') {
      next = node.items[key];
    }
    if (!next) break;
    node = next as Node;
  }
  return node;
}
