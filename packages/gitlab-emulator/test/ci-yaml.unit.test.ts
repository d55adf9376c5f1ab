/**
 * The emulator's reading of `.gitlab-ci.yml` (pure code, no servers): inputs checked and interpolated as GitLab does,
 * includes with inputs, rules, variable expansion with `$$`, and the shell words of a job script. A property: any
 * string passed as an input reaches the job as exactly that string (interpolation happens after YAML parsing, so a
 * hostile value cannot add keys or jobs).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { CiError, evaluate, expandVariable, loadConfig, resolveInputs } from '../src/ci-yaml.ts';
import { shellWords } from '../src/runner.ts';

const FILE = `spec:
  inputs:
    id: {}
    count: { type: number, default: 2 }
    flag: { type: boolean, default: false }
    tags: { type: array, default: [a] }
    mode: { default: x, options: [x, y] }
    name: { default: '', regex: '^[a-z]*$' }
---
workflow:
  name: 'run $[[ inputs.id ]]'
job:
  variables:
    ID: $[[ inputs.id ]]
    COUNT: $[[ inputs.count ]]
  script:
    - echo "$[[ inputs.id ]]"
`;

const load = (files: Record<string, string>, inputs: Record<string, unknown> = {}, vars: Record<string, string> = {}) =>
  loadConfig((p) => files[p], '.gitlab-ci.yml', inputs, { CI_PIPELINE_SOURCE: 'api', ...vars });

describe('ci-yaml', () => {
  it('checks inputs with GitLab words', () => {
    const specs = { id: {}, count: { type: 'number', default: 1 }, mode: { default: 'x', options: ['x', 'y'] } };
    assert.deepEqual(resolveInputs(specs, { id: 'a' }), { id: 'a', count: 1, mode: 'x' });
    assert.throws(() => resolveInputs(specs, {}), /`id` input: required value has not been provided/);
    assert.throws(() => resolveInputs(specs, { id: 1 }), /`id` input: provided value is not a string/);
    assert.throws(() => resolveInputs(specs, { id: 'a', count: '3' }), /`count` input: provided value is not a number/);
    assert.throws(() => resolveInputs(specs, { id: 'a', mode: 'z' }), /`z` cannot be used/);
    assert.throws(() => resolveInputs(specs, { id: 'a', nope: 1 }), /unknown input arguments: nope/);
    assert.throws(() => resolveInputs({ n: { regex: '^[0-9]+$' } }, { n: 'x1' }), /does not match required RegEx/);
  });

  it('interpolates inputs, keeping the type of a whole-value interpolation', () => {
    const config = load({ '.gitlab-ci.yml': FILE }, { id: 'd-1', count: 5 });
    assert.equal(config.name, 'run d-1');
    assert.deepEqual(config.jobs[0]!.variables, { ID: 'd-1', COUNT: '5' });
    assert.deepEqual(config.jobs[0]!.script, ['echo "d-1"']);
  });

  it('reads local includes with their own inputs, and refuses other include kinds', () => {
    const files = {
      '.gitlab-ci.yml': `spec:\n  inputs:\n    app: { default: '' }\n---\ninclude:\n  - local: ci/job.yml\n    inputs:\n      who: $[[ inputs.app ]]\nmine:\n  script: [echo mine]\n`,
      'ci/job.yml': `spec:\n  inputs:\n    who: {}\n---\nworkflow: { name: 'for $[[ inputs.who ]]' }\nbuild:\n  rules:\n    - if: '"$[[ inputs.who ]]" == "web"'\n  script: [echo build]\n`,
    };
    const flui = load(files, { app: 'web' });
    assert.equal(flui.name, 'for web');
    assert.deepEqual(flui.jobs.map((j) => j.name).sort(), ['build', 'mine']);
    const plain = load(files);
    assert.deepEqual(
      plain.jobs.map((j) => j.name),
      ['mine'],
    );
    assert.equal(plain.name, 'for ', 'a name of blanks is kept as the YAML says; GitLab leaves it unnamed when empty');
    assert.throws(
      () => load({ '.gitlab-ci.yml': 'include:\n  - remote: https://x/y.yml\nj: { script: [a] }\n' }),
      CiError,
    );
    assert.throws(() => load({ '.gitlab-ci.yml': 'include: missing.yml\nj: { script: [a] }\n' }), /does not exist/);
    assert.throws(() => load({ '.gitlab-ci.yml': 'j: { script: [a] }\n' }, { x: 1 }), /unknown input arguments: x/);
  });

  it('applies workflow and job rules', () => {
    const file = `workflow:\n  rules:\n    - if: $CI_PIPELINE_SOURCE == "push"\n      when: never\n    - when: always\nj:\n  rules:\n    - if: $MODE =~ /^fa/ && $CI_PIPELINE_SOURCE != "web"\n  script: [x]\nk:\n  script: [y]\n`;
    assert.deepEqual(
      load({ '.gitlab-ci.yml': file }, {}, { MODE: 'fast' }).jobs.map((j) => j.name),
      ['j', 'k'],
    );
    assert.deepEqual(
      load({ '.gitlab-ci.yml': file }, {}, { MODE: 'slow' }).jobs.map((j) => j.name),
      ['k'],
    );
    assert.throws(
      () => load({ '.gitlab-ci.yml': file }, {}, { CI_PIPELINE_SOURCE: 'push' }),
      /filtered out by workflow rules/,
    );
    assert.equal(evaluate('$A == null || $B', { B: 'x' }), true);
    assert.equal(evaluate('"a" == "b"', {}), false);
  });

  it('expands variables in workflow:name; a name that expands to blank leaves the pipeline unnamed', () => {
    const file = `variables:\n  NAME: ''\nworkflow:\n  name: $NAME\nj:\n  script: [x]\n`;
    assert.equal(load({ '.gitlab-ci.yml': file }).name, null);
    assert.equal(load({ '.gitlab-ci.yml': file.replace("''", 'flui-7') }).name, 'flui-7');
  });

  it('expands variables as GitLab does: $$ is a literal $, unknown references stay', () => {
    assert.equal(expandVariable('costs $$5 for $WHO and $NOPE', { WHO: 'me' }), 'costs $5 for me and $NOPE');
  });

  it('splits a script line into piped commands with quotes and $(cat file)', () => {
    const files = new Map([['/tmp/d', 'sha256:abc']]);
    const cmds = shellWords(
      `printf '%s' "$P" | base64 -d | buildah login -u "$U" --password-stdin h && echo "d $(cat /tmp/d)"`,
      { P: 'cA==', U: 'u s' },
      files,
    );
    assert.deepEqual(
      cmds.map((c) => [c.words, c.pipe]),
      [
        [['printf', '%s', 'cA=='], true],
        [['base64', '-d'], true],
        [['buildah', 'login', '-u', 'u s', '--password-stdin', 'h'], false],
        [['echo', 'd sha256:abc'], false],
      ],
    );
  });

  it('property: any input string reaches the job as exactly that string', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 80 }), (id) => {
        const config = load({ '.gitlab-ci.yml': FILE }, { id });
        assert.deepEqual(Object.keys(config.jobs[0]!.variables), ['ID', 'COUNT']);
        assert.equal(config.jobs[0]!.variables.ID, id);
        assert.equal(config.jobs.length, 1);
      }),
      { numRuns: Number(process.env.FLUI_FUZZ_RUNS ?? 300) },
    );
  });
});
