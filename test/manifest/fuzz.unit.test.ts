/**
 * Property-based fuzzing of manifest input: whatever a user writes, Flui answers with a ManifestError that names the
 * problem (and where), or a valid manifest; it never crashes with anything else.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { ManifestError, parseManifest, validateManifest } from '../../src/manifest/parse.ts';

const RUNS = Number(process.env.FLUI_FUZZ_RUNS ?? 1000);

const base = {
  apiVersion: 'flui.dev/v1',
  kind: 'Application',
  metadata: { name: 'hello' },
  spec: {
    source: { repository: 'acme/hello', branch: 'main', context: '.', dockerfile: 'Dockerfile' },
    image: { repository: 'ghcr.io/acme/hello' },
    port: 8080,
    replicas: 2,
    env: { GREETING: 'hi' },
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
});
