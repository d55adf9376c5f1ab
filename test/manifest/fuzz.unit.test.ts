/**
 * Property-based fuzzing of manifest input: whatever a user writes, Flui answers with a ManifestError that names the
 * problem (and where), or a valid manifest; it never crashes with anything else.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { UNSAFE_CHARACTER } from '../../src/manifest/names.ts';
import { ManifestError, parseManifest, validateManifest } from '../../src/manifest/parse.ts';

const RUNS = Number(process.env.FLUI_FUZZ_RUNS ?? 1000);

const base = {
  apiVersion: 'flui.dev/v1',
  kind: 'Application',
  metadata: { name: 'hello' },
  spec: {
    source: {
      repository: 'acme/hello',
      branch: 'main',
      context: '.',
      dockerfile: 'Dockerfile',
      buildArgs: { VERSION: '1.0' },
    },
    image: { repository: 'ghcr.io/acme/hello' },
    port: 8080,
    replicas: 2,
    env: { GREETING: 'hi', DB_PASSWORD: { secretKeyRef: { name: 'db', key: 'password' } } },
    healthCheck: { path: '/healthz' },
    deploy: { policy: 'supersede' },
  },
};

/** Every dotted path to a leaf or object in the base manifest. */
function paths(value: unknown, prefix: string[] = []): string[][] {
  if (value === null || typeof value !== 'object') return [prefix];
  return [prefix, ...Object.entries(value).flatMap(([k, v]) => paths(v, [...prefix, k]))];
}
const allPaths = paths(base).filter((p) => p.length > 0);

const junk = fc.oneof(
  fc.string(),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.string(), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 8 }), fc.string(), { maxKeys: 3 }),
  fc.constantFrom('', '-1', '../..', 'UPPER', 'a'.repeat(70), 'x:y', '@sha256:', '${{ secrets.X }}'),
);

type Mutation =
  | { kind: 'set'; path: string[]; value: unknown }
  | { kind: 'delete'; path: string[] }
  | { kind: 'add'; path: string[]; key: string; value: unknown };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), path: fc.constantFrom(...allPaths), value: junk }),
  fc.record({ kind: fc.constant('delete' as const), path: fc.constantFrom(...allPaths) }),
  fc.record({
    kind: fc.constant('add' as const),
    path: fc.constantFrom([], ...allPaths),
    key: fc.string({ minLength: 1, maxLength: 10 }),
    value: junk,
  }),
);

function apply(doc: unknown, m: Mutation): unknown {
  const copy = structuredClone(doc) as Record<string, unknown>;
  const parentPath = m.kind === 'add' ? m.path : m.path.slice(0, -1);
  let parent: unknown = copy;
  for (const key of parentPath) parent = (parent as Record<string, unknown> | null)?.[key];
  if (parent === null || typeof parent !== 'object') return copy;
  const obj = parent as Record<string, unknown>;
  if (m.kind === 'set') obj[m.path.at(-1)!] = m.value;
  if (m.kind === 'delete') delete obj[m.path.at(-1)!];
  if (m.kind === 'add') obj[m.key] = m.value;
  return copy;
}

function assertHelpful(err: unknown): void {
  assert.ok(err instanceof ManifestError, `unexpected error type: ${String(err)}`);
  assert.ok(err.problems.length > 0);
  for (const p of err.problems) {
    assert.ok(p.message.length > 0, 'every problem has a message');
    assert.ok(!/\[object Object\]|undefined/.test(p.message), `message reads well: ${p.message}`);
  }
}

describe('manifest fuzzing', () => {
  it(`mutated manifests are accepted or refused with a named field (${RUNS} cases)`, () => {
    let refused = 0;
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 4 }), (mutations) => {
        const doc = mutations.reduce<unknown>(apply, base);
        const text = stringify(doc);
        try {
          parseManifest(text, 'fuzz.yaml');
        } catch (err) {
          refused++;
          assertHelpful(err);
          const e = err as ManifestError;
          // A refusal of a mapping-shaped document points at a line, so the user can find it.
          for (const p of e.problems) if (p.field) assert.ok(p.line !== undefined, `${p.field} has a line`);
        }
      }),
      { numRuns: RUNS },
    );
    assert.ok(refused > RUNS / 2, `most mutations are invalid (${refused}/${RUNS})`);
  });

  it(`arbitrary text never crashes the parser (${RUNS} cases)`, () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.json()), (text) => {
        try {
          validateManifest(parseManifest(text, 'fuzz.yaml'));
        } catch (err) {
          assertHelpful(err);
        }
      }),
      { numRuns: RUNS },
    );
  });

  it(`valid manifests with arbitrary text in their free-text fields pass and keep every value (${RUNS} cases)`, () => {
    fc.assert(
      fc.property(buildArg, safeText, fc.dictionary(envKey, buildArg, { maxKeys: 4 }), (arg, env, args) => {
        const doc = structuredClone(base) as {
          spec: { source: Record<string, unknown>; env: Record<string, unknown> };
        };
        doc.spec.source.buildArgs = { ...args, ARG: arg };
        doc.spec.env = { GREETING: env };
        const m = parseManifest(stringify(doc), 'fuzz.yaml');
        assert.equal(m.kind, 'Application');
        if (m.kind !== 'Application') return;
        assert.deepEqual(m.spec.source.buildArgs, { ...args, ARG: arg });
        assert.equal(m.spec.env.GREETING, env);
      }),
      { numRuns: RUNS },
    );
  });

  it(`a forbidden character anywhere in any string field is refused, naming that field and its line (${RUNS} cases)`, () => {
    fc.assert(
      fc.property(fc.constantFrom(...stringFields), forbiddenCharacter, fc.nat(), ({ path, value }, ch, at) => {
        const i = at % (value.length + 1);
        const doc = structuredClone(base) as Record<string, unknown>;
        setPath(doc, path, `${value.slice(0, i)}${ch}${value.slice(i)}`);
        let err: unknown;
        try {
          parseManifest(stringify(doc), 'fuzz.yaml');
        } catch (e) {
          err = e;
        }
        assert.ok(err instanceof ManifestError, `accepted ${path.join('.')} with U+${ch.charCodeAt(0).toString(16)}`);
        const code = ch.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0');
        assert.deepEqual(
          err.problems.map((p) => [p.field, p.message.slice(0, 'contains U+0000'.length)]),
          [[path.join('.'), `contains U+${code}`]],
        );
        assert.ok(err.problems[0]?.line, 'the refusal points at a line');
      }),
      { numRuns: RUNS },
    );
  });
});

/** Text without a forbidden character: any Unicode, spaces, quotes, YAML and Actions syntax. */
const safeText = fc
  .oneof(
    fc.string({ unit: 'grapheme', maxLength: 30 }),
    fc.string({
      unit: fc.constantFrom(
        ' ',
        ':',
        '#',
        '"',
        "'",
        '$',
        '{',
        '}',
        '-',
        '|',
        '>',
        '&',
        '*',
        '!',
        '%',
        '\\',
        'é',
        '\u00a0',
        '\u200b',
        '\ufeff',
      ),
      maxLength: 20,
    }),
  )
  .filter((s) => !UNSAFE_CHARACTER.test(s));

const envKey = fc.stringMatching(/^[A-Z_][A-Z0-9_]{0,10}$/);

/** One character of the forbidden classes: C0, DEL and C1, the Unicode line and paragraph separators, bidi controls. */
const forbiddenCharacter = fc
  .oneof(
    fc.integer({ min: 0, max: 0x1f }),
    fc.integer({ min: 0x7f, max: 0x9f }),
    fc.constantFrom(0x2028, 0x2029, 0x200e, 0x200f, 0x061c),
    fc.integer({ min: 0x202a, max: 0x202e }),
    fc.integer({ min: 0x2066, max: 0x2069 }),
  )
  .map((c) => String.fromCharCode(c));

/** Every string leaf of the base manifest except the two literals (apiVersion, kind) and the policy enum. */
const stringFields = paths(base)
  .map((path) => ({ path, value: path.reduce<unknown>((v, k) => (v as Record<string, unknown>)[k], base) }))
  .filter((f): f is { path: string[]; value: string } => typeof f.value === 'string')
  .filter(({ path }) => !['apiVersion', 'kind', 'policy'].includes(path.at(-1)!));

function setPath(doc: Record<string, unknown>, path: string[], value: unknown): void {
  let parent = doc;
  for (const key of path.slice(0, -1)) parent = parent[key] as Record<string, unknown>;
  parent[path.at(-1)!] = value;
}

/** A build arg's value: any safe text that does not end in whitespace (CI tools would strip it; refused). */
const buildArg = safeText.filter((v) => v === v.trimEnd());
