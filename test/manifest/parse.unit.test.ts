import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { loadManifest, ManifestError, parseManifest } from '../../src/manifest/parse.ts';
import { manifestJsonSchema, SCHEMA_PATH } from '../../src/manifest/json-schema.ts';

function problemsOf(text: string) {
  try {
    parseManifest(text, 'app.yaml');
  } catch (err) {
    assert.ok(err instanceof ManifestError, `expected ManifestError, got ${String(err)}`);
    return err;
  }
  assert.fail('manifest was accepted');
}

const valid = `apiVersion: flui.dev/v1
kind: Application
metadata:
  name: hello
spec:
  source:
    repository: acme/hello
  image:
    repository: ghcr.io/acme/hello
`;

describe('manifest parsing', () => {
  it('reads the examples with defaults filled in', async () => {
    const hello = await loadManifest('examples/hello/flui.yaml');
    assert.equal(hello.kind, 'Application');
    assert.equal(hello.metadata.namespace, 'default');
    assert.equal(hello.spec.deploy.policy, 'supersede');
    if (hello.kind === 'Application') assert.equal(hello.spec.source.dockerfile, 'Dockerfile');
    const redis = await loadManifest('examples/redis/flui.yaml');
    assert.equal(redis.kind, 'CatalogApp');
  });

  it('names the file, line, column and field of a bad value', () => {
    const err = problemsOf(valid.replace('acme/hello\n', 'not a repo\n'));
    assert.deepEqual(err.problems, [
      {
        field: 'spec.source.repository',
        message: 'must be "owner/name", e.g. "acme/hello"',
        line: 7,
        column: 17,
      },
    ]);
    assert.match(
      err.message,
      /^app\.yaml: invalid manifest:\n {2}7:17 {2}spec\.source\.repository: must be "owner\/name"/,
    );
  });

  it('reports a missing required field at its parent and unknown fields by name', () => {
    const err = problemsOf(valid.replace('  image:\n    repository: ghcr.io/acme/hello\n', '  imgae: {}\n'));
    const fields = err.problems.map((p) => `${p.field}: ${p.message}`).sort();
    assert.deepEqual(fields, ['spec.image: is required (object)', 'spec: unknown field "imgae"']);
  });

  it('rejects an unknown kind and a wrong apiVersion', () => {
    assert.match(problemsOf(valid.replace('kind: Application', 'kind: Lambda')).message, /kind/);
    const err = problemsOf(valid.replace('flui.dev/v1', 'flui.dev/v2'));
    assert.equal(err.problems[0]?.field, 'apiVersion');
    assert.equal(err.problems[0]?.line, 1);
  });

  it('reports YAML syntax errors with their position and non-mapping documents', () => {
    const err = problemsOf('apiVersion: flui.dev/v1\nkind: [unclosed\n');
    assert.equal(err.problems[0]?.field, '');
    assert.match(err.problems[0]?.message ?? '', /^YAML: /);
    assert.ok(err.problems[0]?.line);
    assert.match(problemsOf('- a\n- b\n').message, /expected a mapping/);
    assert.match(problemsOf('a: 1\na: 2\n').message, /YAML: .*(unique|duplicate)/i);
  });

  it('refuses paths that leave the repository and tagless catalog images', () => {
    const escape = problemsOf(
      valid.replace('    repository: acme/hello\n', '    repository: acme/hello\n    context: ../other\n'),
    );
    assert.equal(escape.problems[0]?.field, 'spec.source.context');
    const catalog = problemsOf(
      'apiVersion: flui.dev/v1\nkind: CatalogApp\nmetadata: { name: redis }\nspec: { image: registry.local/library/redis }\n',
    );
    assert.equal(catalog.problems[0]?.field, 'spec.image');
    assert.match(catalog.problems[0]?.message ?? '', /tag or a digest/);
  });

  it('says so when the file does not exist', async () => {
    await assert.rejects(loadManifest('nope.yaml'), /nope\.yaml: invalid manifest:\n.*file not found/);
  });

  it('keeps the committed JSON Schema in step with the zod schema (npm run schema)', () => {
    assert.equal(readFileSync(SCHEMA_PATH, 'utf8'), manifestJsonSchema());
  });
});
