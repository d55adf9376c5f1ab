import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { EXIT, main } from '../../src/cli/main.ts';
import { makeTempDir } from '../../dev/process.ts';
import { loadManifest, ManifestError, parseManifest, validateManifest } from '../../src/manifest/parse.ts';
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

  it('refuses a build arg ending in whitespace, which CI tools would strip, before anything starts', () => {
    for (const value of ['1.0 ', '1.0  ', '1.0\u00a0', '1.0\u3000']) {
      const { problems } = refusal(application({ source: { buildArgs: { VERSION: value } } }));
      assert.equal(problems[0]?.field, 'spec.source.buildArgs.VERSION', JSON.stringify(value));
      assert.match(problems[0]?.message ?? '', /must not end in whitespace/);
    }
    assert.doesNotThrow(() => validateManifest(application({ source: { buildArgs: { VERSION: ' 1.0' } } })));
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

/** One character of each class no manifest string may hold. */
const FORBIDDEN: Record<string, string> = {
  'C0 NUL': '\u0000',
  'C0 BEL': '\u0007',
  'C0 tab': '\t',
  'C0 line feed': '\n',
  'C0 carriage return': '\r',
  'C0 escape': '\u001b',
  DEL: '\u007f',
  'C1 NEL': '\u0085',
  'C1 CSI': '\u009b',
  'line separator': '\u2028',
  'paragraph separator': '\u2029',
  'bidi LRE': '\u202a',
  'bidi RLO': '\u202e',
  'bidi LRI': '\u2066',
  'bidi PDI': '\u2069',
  'bidi LRM': '\u200e',
  'bidi RLM': '\u200f',
  'bidi ALM': '\u061c',
};

function application(over: { source?: object; spec?: object; metadata?: object } = {}) {
  return {
    apiVersion: 'flui.dev/v1',
    kind: 'Application',
    metadata: { name: 'hello', namespace: 'shop', ...over.metadata },
    spec: {
      source: { repository: 'acme/hello', branch: 'main', context: 'web', dockerfile: 'Dockerfile', ...over.source },
      image: { repository: 'ghcr.io/acme/hello' },
      env: { GREETING: 'hello', DB_PASSWORD: { secretKeyRef: { name: 'db', key: 'password' } } },
      healthCheck: { path: '/healthz' },
      ...over.spec,
    },
  };
}

const catalog = (image: string) => ({
  apiVersion: 'flui.dev/v1',
  kind: 'CatalogApp',
  metadata: { name: 'redis' },
  spec: { image },
});

/** Each string field of both kinds, as a function from a string to the manifest holding it there. */
const FIELDS: Record<string, (v: string) => unknown> = {
  'metadata.name': (v) => application({ metadata: { name: v } }),
  'metadata.namespace': (v) => application({ metadata: { namespace: v } }),
  'spec.source.repository': (v) => application({ source: { repository: v } }),
  'spec.source.branch': (v) => application({ source: { branch: v } }),
  'spec.source.context': (v) => application({ source: { context: v } }),
  'spec.source.dockerfile': (v) => application({ source: { dockerfile: v } }),
  'spec.source.buildArgs.VERSION': (v) => application({ source: { buildArgs: { VERSION: v } } }),
  'spec.image.repository': (v) => application({ spec: { image: { repository: v } } }),
  'spec.env.GREETING': (v) => application({ spec: { env: { GREETING: v } } }),
  'spec.env.DB.secretKeyRef.name': (v) =>
    application({ spec: { env: { DB: { secretKeyRef: { name: v, key: 'k' } } } } }),
  'spec.env.DB.secretKeyRef.key': (v) =>
    application({ spec: { env: { DB: { secretKeyRef: { name: 'db', key: v } } } } }),
  'spec.healthCheck.path': (v) => application({ spec: { healthCheck: { path: v } } }),
  'spec.resources.limits.memory': (v) => application({ spec: { resources: { limits: { memory: v } } } }),
  'spec.image': (v) => catalog(v),
};
/** A valid value of each field, to put a forbidden character into. */
const VALID: Record<string, string> = {
  'metadata.name': 'hello',
  'metadata.namespace': 'shop',
  'spec.source.repository': 'acme/hello',
  'spec.source.branch': 'release/v1',
  'spec.source.context': 'web',
  'spec.source.dockerfile': 'Dockerfile',
  'spec.source.buildArgs.VERSION': '1.2.3',
  'spec.image.repository': 'ghcr.io/acme/hello',
  'spec.env.GREETING': 'hello',
  'spec.env.DB.secretKeyRef.name': 'db',
  'spec.env.DB.secretKeyRef.key': 'password',
  'spec.healthCheck.path': '/healthz',
  'spec.resources.limits.memory': '256Mi',
  'spec.image': 'registry.example.com/library/redis:7.4',
};

function refusal(value: unknown): ManifestError {
  try {
    validateManifest(value, 'app.yaml');
  } catch (err) {
    assert.ok(err instanceof ManifestError, `expected ManifestError, got ${String(err)}`);
    return err;
  }
  assert.fail('manifest was accepted');
}

describe('manifest strings that could change how a CI file, a command line or an API path reads', () => {
  it('accepts every field of both kinds with its valid value (the base of the cases below)', () => {
    for (const [field, make] of Object.entries(FIELDS))
      assert.doesNotThrow(() => validateManifest(make(VALID[field]!)), field);
  });

  for (const [name, ch] of Object.entries(FORBIDDEN)) {
    it(`refuses ${name} (U+${ch.charCodeAt(0).toString(16).padStart(4, '0')}) in every string field, naming the field and the character`, () => {
      const code = `U+${ch.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`;
      for (const [field, make] of Object.entries(FIELDS)) {
        const valid = VALID[field]!;
        const err = refusal(make(`${valid.slice(0, 2)}${ch}${valid.slice(2)}`));
        assert.deepEqual(
          err.problems.map((p) => p.field),
          [field],
          `${field}: ${err.message}`,
        );
        assert.match(
          err.problems[0]!.message,
          new RegExp(`^contains ${code.replace('+', '\\+')} \\(.*\\) at character 3: `),
          field,
        );
        // The message names the character; it never carries it, so a terminal cannot act on it.
        const said = err.problems.map((p) => `${p.field}: ${p.message}`).join('\n');
        assert.ok(!said.includes(ch), `${field}: the message holds the raw character`);
      }
    });
  }

  it('refuses forbidden characters in the names of build args and env vars, printing the name escaped', () => {
    const arg = refusal(application({ source: { buildArgs: { 'A\u2028B': 'x' } } }));
    assert.deepEqual(
      arg.problems.map((p) => [p.field, p.message]),
      [['spec.source.buildArgs.A\\u{2028}B', arg.problems[0]!.message]],
    );
    assert.match(arg.problems[0]!.message, /^is not a valid name: contains U\+2028/);
    const env = refusal(application({ spec: { env: { 'X\u001b[2J': 'x' } } }));
    assert.equal(env.problems[0]?.field, 'spec.env.X\\u{1b}[2J');
    assert.ok(!env.message.includes('\u001b'));
    const unknown = refusal(application({ spec: { 'ima\u202ege': {} } }));
    assert.match(unknown.message, /unknown field "ima\\u\{202e\}ge"/);
  });

  it('refuses a leading "-" on paths, branches and image references, and "." or ".." as a repository name', () => {
    const cases: [string, unknown][] = [
      ['spec.source.repository', application({ source: { repository: '-acme/hello' } })],
      ['spec.source.branch', application({ source: { branch: '-main' } })],
      ['spec.source.context', application({ source: { context: '--file=x' } })],
      ['spec.source.dockerfile', application({ source: { dockerfile: '-f' } })],
      ['spec.image.repository', application({ spec: { image: { repository: '-ghcr.io/acme/hello' } } })],
      ['spec.image', catalog('-registry.example.com/library/redis:7.4')],
    ];
    for (const [field, manifest] of cases) {
      const err = refusal(manifest);
      assert.deepEqual(
        err.problems.map((p) => [p.field, p.message]),
        [[field, 'must not begin with "-", which a command line would read as an option']],
      );
    }
    for (const name of ['.', '..']) {
      const err = refusal(application({ source: { repository: `acme/${name}` } }));
      assert.deepEqual(
        err.problems.map((p) => [p.field, p.message]),
        [['spec.source.repository', 'the repository name must not be "." or ".."']],
      );
    }
  });

  it('still accepts what is valid: Unicode text, spaces, `${{` taken literally, dots and dashes inside names', () => {
    const m = validateManifest(
      application({
        source: {
          repository: 'acme-corp/.github-tools',
          branch: 'feature/ünïcode-1.x',
          context: 'services/web-api',
          dockerfile: '.docker/Dockerfile.prod',
          buildArgs: { GREETING: 'héllo wörld ✓ 你好 🚀', EXPR: '${{ secrets.X }}', EMPTY: '' },
        },
        spec: {
          env: {
            QUOTE: `it's "quoted" # not a comment`,
            RTL: 'שלום',
            DB: { secretKeyRef: { name: 'db.creds-1', key: 'pass_word.v2' } },
          },
          healthCheck: { path: '/health check?x=1' },
        },
      }),
    );
    assert.equal(m.kind, 'Application');
    if (m.kind === 'Application') assert.equal(m.spec.source.buildArgs.GREETING, 'héllo wörld ✓ 你好 🚀');
    assert.deepEqual(m.spec.env.DB, { secretKeyRef: { name: 'db.creds-1', key: 'pass_word.v2' } });
  });

  it('takes an env var from a Secret by reference: a strict { secretKeyRef: { name, key } }, checked as Kubernetes does', () => {
    const bad: [unknown, string, RegExp][] = [
      [{ secretKeyRef: { name: 'Db', key: 'k' } }, 'spec.env.DB.secretKeyRef.name', /Kubernetes object name/],
      [{ secretKeyRef: { name: 'db', key: 'a/b' } }, 'spec.env.DB.secretKeyRef.key', /Secret key/],
      [{ secretKeyRef: { name: 'db', key: '..x' } }, 'spec.env.DB.secretKeyRef.key', /must not be "\." or "\.\."/],
      [{ secretKeyRef: { name: 'db' } }, 'spec.env.DB.secretKeyRef.key', /is required/],
      [{ secretKeyRef: { name: 'db', key: 'k', value: 'plain' } }, 'spec.env.DB.secretKeyRef', /unknown field "value"/],
      [42, 'spec.env.DB', /^must be a string, or \{ secretKeyRef: \{ name, key \} \}/],
    ];
    for (const [value, field, message] of bad) {
      const err = refusal(application({ spec: { env: { DB: value } } }));
      assert.equal(err.problems.length, 1, err.message);
      assert.equal(err.problems[0]?.field, field, err.message);
      assert.match(err.problems[0]!.message, message);
    }
    const other = refusal(application({ spec: { env: { DB: { value: 'x' } } } }));
    assert.deepEqual(
      other.problems.map((p) => `${p.field}: ${p.message}`),
      ['spec.env.DB.secretKeyRef: is required (object)', 'spec.env.DB: unknown field "value"'],
    );
  });

  it('points at the line of the field in the file, and `flui deploy` exits 2 before it connects to anything', async () => {
    const text = valid.replace(
      '    repository: acme/hello\n',
      '    repository: acme/hello\n    buildArgs:\n      TAG: "v1\\u2028- run: cat ~/.docker/config.json"\n',
    );
    const err = problemsOf(text);
    assert.deepEqual(err.problems, [
      {
        field: 'spec.source.buildArgs.TAG',
        message:
          'contains U+2028 (a line separator, which YAML 1.1 reads as a line break) at character 3: control ' +
          'characters, line separators and bidirectional controls are not allowed',
        line: 9,
        column: 12,
      },
    ]);
    const dir = await makeTempDir('manifest');
    const file = join(dir, 'flui.yaml');
    await writeFile(file, text);
    const out: string[] = [];
    const errors: string[] = [];
    const io = { out: (t: string) => void out.push(t), err: (t: string) => void errors.push(t), isTTY: false };
    // Nothing listens on port 1: had the CLI tried to start the deploy, it would fail otherwise.
    const code = await main(['deploy', file], io, {
      TEMPORAL_ADDRESS: '127.0.0.1:1',
      TEMPORAL_CONNECT_TIMEOUT_MS: '200',
    });
    assert.equal(code, EXIT.usage);
    assert.equal(out.join(''), '');
    assert.match(errors.join(''), /^ {2}9:12 {2}spec\.source\.buildArgs\.TAG: contains U\+2028 /m);
    assert.match(errors.join(''), /Nothing was deployed\./);
  });
});
