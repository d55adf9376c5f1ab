/**
 * Property-based fuzzing of `flui` arguments: whatever a user types, the CLI answers with a usage error (exit 2) that
 * says what is wrong, or would proceed to Temporal; it never crashes and never starts anything on bad input. Temporal
 * is pointed at a closed port, so reaching it at all shows as exit 4: a bad input must stop before that.
 */
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { EXIT } from '../../src/cli/exit.ts';
import { main } from '../../src/cli/main.ts';
import { freePort } from '../../dev/process.ts';

const RUNS = Number(process.env.FLUI_FUZZ_RUNS ?? 1000);

function capture() {
  let out = '';
  let err = '';
  return {
    io: { out: (t: string) => void (out += t), err: (t: string) => void (err += t), isTTY: false },
    text: () => ({ out, err }),
  };
}

describe('flui CLI argument fuzzing', () => {
  it(`rejects malformed commands with exit 2 and a message, before contacting anything (${RUNS} cases)`, async () => {
    const env = {
      TEMPORAL_ADDRESS: `127.0.0.1:${await freePort()}`,
      TEMPORAL_CONNECT_TIMEOUT_MS: '200',
      KUBECONFIG: '/nonexistent/kubeconfig',
    };
    const word = fc.oneof(
      fc.constantFrom('deploy', 'status', 'cancel', 'retry', 'builds', 'logs', 'images', 'rollback', 'destroy', ''),
      fc.constantFrom(
        '--json',
        '--follow',
        '--policy',
        'queue',
        'yolo',
        '--limit',
        '0',
        '-1',
        '1e9',
        '--build',
        'x',
        '--to',
        'sha256:zz',
        '-n',
        '--nope',
        '-z',
      ),
      fc.string({ maxLength: 12 }),
    );
    let usage = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(word, { maxLength: 6 }), async (argv) => {
        const c = capture();
        const code = await main(argv, c.io, env);
        const { out, err } = c.text();
        assert.ok([EXIT.ok, EXIT.usage, EXIT.unavailable, EXIT.failed].includes(code as 0), `unexpected exit ${code}`);
        if (code === EXIT.usage) {
          usage++;
          assert.match(err, /\S/, 'a usage error says what is wrong');
          assert.equal(out, '', 'nothing on stdout for a usage error');
        }
        if (code === EXIT.ok) {
          const help =
            argv.includes('--help') || argv.includes('-h') || argv.filter((a) => !a.startsWith('-'))[0] === 'help';
          assert.ok(help, `exit 0 only for help: ${JSON.stringify(argv)}`);
        }
      }),
      { numRuns: RUNS },
    );
    assert.ok(usage > RUNS / 2, `most random argument lists are usage errors (${usage}/${RUNS})`);
  });

  it(`an invalid manifest is refused with file, line and field, and nothing is started (${Math.ceil(RUNS / 4)} cases)`, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'flui-cli-fuzz-'));
    const env = { TEMPORAL_ADDRESS: `127.0.0.1:${await freePort()}` };
    const bad = fc.record({
      apiVersion: fc.constantFrom('flui.dev/v1', 'flui.dev/v0', 1),
      kind: fc.constantFrom('Application', 'CatalogApp', 'Thing'),
      metadata: fc.record({ name: fc.oneof(fc.constant('Bad_Name'), fc.string({ maxLength: 70 })) }),
      spec: fc.dictionary(
        fc.constantFrom('source', 'image', 'port', 'replicas', 'bogus'),
        fc.oneof(fc.string(), fc.integer()),
      ),
    });
    let n = 0;
    await fc.assert(
      fc.asyncProperty(bad, async (doc) => {
        const file = join(dir, `m${n++}.yaml`);
        await writeFile(file, stringify(doc));
        const c = capture();
        const code = await main(['deploy', file], c.io, env);
        const { err } = c.text();
        assert.equal(code, EXIT.usage, err);
        assert.match(err, new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: invalid manifest:`));
        assert.match(err, /Nothing was deployed\./);
      }),
      { numRuns: Math.ceil(RUNS / 4) },
    );
  });
});
