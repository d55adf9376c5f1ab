/**
 * What the emulator understands of a `.gitlab-ci.yml`, read with the `yaml` package the way GitLab reads it (facts
 * from GitLab's CI/CD YAML syntax reference and its "Define inputs" page, checked against the docs):
 * - a file may start with a header document holding `spec: inputs:` and a `---` separator; each input has an
 *   optional `default` (without one it is required), `type` (`string` by default, `number`, `boolean`, `array`),
 *   `options` and `regex`; `$[[ inputs.name ]]` is interpolated in the file's content (a value that is exactly one
 *   interpolation keeps the input's type);
 * - `include:` of `local` files (a string, `{ local }`, or a list of them; `inputs` for an included file's own header);
 *   other include kinds are refused with a clear error, as the emulator cannot fetch them;
 * - `workflow: name` (the pipeline's name) and `workflow: rules`; jobs are top-level keys that are not reserved
 *   keywords and do not start with `.`; `stages`; a job's `stage`, `rules`, `when`, `variables`, `script`,
 *   `before_script`, `image`;
 * - rules: the first rule whose `if` holds decides (`when: never` excludes); an `if` is `$VAR`, `$VAR == "x"`,
 *   `$VAR != "x"`, `$VAR == null`, `$VAR =~ /re/`, `$VAR !~ /re/`, joined by `&&` and `||` (no parentheses: the
 *   emulator's simplification).
 * Error texts are GitLab's, as its pipeline creation reports them in `message.base`.
 */
import { parseAllDocuments } from 'yaml';

export type InputValue = string | number | boolean | string[];

export interface InputSpec {
  default?: unknown;
  type?: string;
  options?: unknown[];
  regex?: string;
  description?: string;
}

export interface CiJob {
  name: string;
  stage: string;
  script: string[];
  variables: Record<string, string>;
  image?: string;
}

export interface CiConfig {
  name: string | null;
  stages: string[];
  jobs: CiJob[];
  variables: Record<string, string>;
}

const RESERVED = new Set([
  'default',
  'include',
  'stages',
  'variables',
  'workflow',
  'image',
  'services',
  'cache',
  'before_script',
  'after_script',
  'spec',
  'pages:deploy',
]);
const DEFAULT_STAGES = ['.pre', 'build', 'test', 'deploy', '.post'];
const INTERPOLATION = /\$\[\[\s*inputs\.([A-Za-z0-9_-]+)\s*\]\]/g;

export class CiError extends Error {}

/** Checks `provided` against the header's inputs; returns the inputs to interpolate, or throws GitLab's errors. */
export function resolveInputs(
  declared: Record<string, InputSpec | null> | undefined,
  provided: Record<string, unknown>,
): Record<string, InputValue> {
  const specs = declared ?? {};
  const errors: string[] = [];
  const unknown = Object.keys(provided).filter((k) => !(k in specs));
  if (unknown.length) errors.push(`unknown input arguments: ${unknown.join(', ')}`);
  const out: Record<string, InputValue> = {};
  for (const [name, raw] of Object.entries(specs)) {
    const spec = raw ?? {};
    const type = spec.type ?? 'string';
    const given = provided[name];
    const hasDefault = 'default' in spec;
    if (given === undefined && !hasDefault) {
      errors.push(`\`${name}\` input: required value has not been provided`);
      continue;
    }
    const value = given === undefined ? spec.default : given;
    const kind = Array.isArray(value) ? 'array' : typeof value;
    if (kind !== type) {
      errors.push(`\`${name}\` input: ${given === undefined ? 'default' : 'provided'} value is not a ${type}`);
      continue;
    }
    if (Array.isArray(spec.options) && !spec.options.includes(value)) {
      errors.push(
        `\`${name}\` input: \`${String(value)}\` cannot be used because it is not in the list of the allowed options`,
      );
      continue;
    }
    if (spec.regex && type === 'string') {
      const re = /^\/(.*)\/$/.exec(spec.regex)?.[1] ?? spec.regex;
      if (!new RegExp(re).test(String(value))) {
        errors.push(`\`${name}\` input: provided value does not match required RegEx pattern`);
        continue;
      }
    }
    out[name] = value as InputValue;
  }
  if (errors.length) throw new CiError(errors.join(', '));
  return out;
}

/** Replaces `$[[ inputs.x ]]` in every string of `node`; a string that is one interpolation takes the value's type. */
function interpolate(node: unknown, inputs: Record<string, InputValue>): unknown {
  if (typeof node === 'string') {
    const whole = /^\$\[\[\s*inputs\.([A-Za-z0-9_-]+)\s*\]\]$/.exec(node);
    const lookup = (name: string): InputValue => {
      if (!(name in inputs)) throw new CiError(`unknown interpolation key: \`${name}\``);
      return inputs[name]!;
    };
    if (whole) return lookup(whole[1]!);
    return node.replace(INTERPOLATION, (_m, name: string) => {
      const v = lookup(name);
      return Array.isArray(v) ? JSON.stringify(v) : String(v);
    });
  }
  if (Array.isArray(node)) return node.map((n) => interpolate(n, inputs));
  if (node && typeof node === 'object') {
    return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, interpolate(v, inputs)]));
  }
  return node;
}

/** Splits a file into its `spec` header (if any) and its content, both parsed. */
export function readFile(
  text: string,
  path: string,
): { spec?: { inputs?: Record<string, InputSpec | null> }; content: Record<string, unknown> } {
  const docs = parseAllDocuments(text);
  const parsed: unknown[] = [];
  for (const doc of Array.isArray(docs) ? docs : [docs]) {
    if (doc.errors.length) throw new CiError(`${path}: ${doc.errors[0]!.message.split('\n')[0]}`);
    parsed.push(doc.toJS());
  }
  const object = (v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  const first = object(parsed[0]);
  if (parsed.length >= 2 && first && 'spec' in first) {
    if (Object.keys(first).some((k) => k !== 'spec')) throw new CiError(`${path}: header can only contain 'spec'`);
    return { spec: (object(first.spec) ?? {}) as never, content: object(parsed[1]) ?? {} };
  }
  if (parsed.length > 1)
    throw new CiError(`${path}: config should be a single YAML document or a header and a document`);
  return { content: first ?? {} };
}

/** The header's declared inputs of a file (undefined when the file has no header). */
export function declaredInputs(text: string, path: string): Record<string, InputSpec | null> | undefined {
  return readFile(text, path).spec?.inputs;
}

type Rule = { if?: unknown; when?: unknown; variables?: unknown };

/** One side of a comparison: `$VAR`/`${VAR}`, a quoted string, `null`; undefined stands for null or unset. */
function operand(text: string, vars: Record<string, string>): string | undefined {
  const t = text.trim();
  if (t === 'null') return undefined;
  if (/^(['"]).*\1$/.test(t)) return t.slice(1, -1);
  const v = /^\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?$/.exec(t);
  if (v) return vars[v[1]!];
  throw new CiError(`invalid expression syntax: ${t}`);
}

/** Evaluates a rules `if:` expression (the subset described above) with `vars`. */
export function evaluate(expression: string, vars: Record<string, string>): boolean {
  return expression.split('||').some((any) =>
    any.split('&&').every((term) => {
      const t = term.trim();
      const cmp = /^(.+?)\s*(==|!=|=~|!~)\s*(.+)$/.exec(t);
      if (cmp) {
        const value = operand(cmp[1]!, vars);
        const rhs = cmp[3]!.trim();
        if (cmp[2] === '=~' || cmp[2] === '!~') {
          const re = /^\/(.*)\/([a-z]*)$/.exec(rhs);
          if (!re) throw new CiError(`invalid expression syntax: ${t}`);
          const hit = new RegExp(re[1]!, re[2]).test(value ?? '');
          return cmp[2] === '=~' ? hit : !hit;
        }
        const expected = operand(rhs, vars);
        return cmp[2] === '==' ? value === expected : value !== expected;
      }
      const presence = /^\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?$/.exec(t);
      if (presence) return Boolean(vars[presence[1]!]);
      throw new CiError(`invalid expression syntax: ${t}`);
    }),
  );
}

/** Whether `rules` let the item in (true), keep it out (false); absent rules let it in. */
function rulesAllow(rules: unknown, vars: Record<string, string>, path: string): boolean {
  if (rules === undefined || rules === null) return true;
  if (!Array.isArray(rules)) throw new CiError(`${path}: rules config should be an array of hashes`);
  for (const rule of rules as Rule[]) {
    if (!rule || typeof rule !== 'object') throw new CiError(`${path}: rules config should be an array of hashes`);
    const holds = rule.if === undefined ? true : evaluate(String(rule.if), vars);
    if (holds) return rule.when !== 'never';
  }
  return false;
}

const stringMap = (v: unknown): Record<string, string> => {
  if (!v || typeof v !== 'object' || Array.isArray(v)) return {};
  return Object.fromEntries(
    Object.entries(v as Record<string, unknown>).map(([k, x]) => [
      k,
      x && typeof x === 'object' && 'value' in x ? String((x as { value: unknown }).value) : String(x ?? ''),
    ]),
  );
};

/** `image: name` or `image: { name, entrypoint }`. */
const imageName = (v: unknown): string | undefined =>
  typeof v === 'string'
    ? v
    : v && typeof v === 'object' && 'name' in v
      ? String((v as { name: unknown }).name)
      : undefined;

const lines = (v: unknown): string[] =>
  Array.isArray(v) ? v.map(String) : v === undefined || v === null ? [] : [String(v)];

/**
 * Loads the pipeline's configuration from `root` (reading files at the pipeline's commit with `read`), checks and
 * interpolates `inputs`, applies `workflow: rules` and job rules with `vars`. Throws {@link CiError} with GitLab's
 * words when the pipeline cannot be created.
 */
export function loadConfig(
  read: (path: string) => string | undefined,
  root: string,
  inputs: Record<string, unknown>,
  vars: Record<string, string>,
): CiConfig {
  const rootText = read(root);
  if (rootText === undefined) throw new CiError('Missing CI config file');
  const merged: Record<string, unknown> = {};
  const seen = new Set<string>();

  const load = (path: string, text: string, given: Record<string, unknown>) => {
    if (seen.has(path)) throw new CiError(`Include \`${path}\` was already included!`);
    seen.add(path);
    const file = readFile(text, path);
    // Inputs given to a root file without a header are unknown arguments; to an included one, a misuse of include.
    const resolved = resolveInputs(file.spec?.inputs, file.spec || path === root ? given : {});
    if (!file.spec && path !== root && Object.keys(given).length) {
      throw new CiError(`${path}: Given inputs not defined in the \`spec\` section of the included configuration file`);
    }
    const content = interpolate(file.content, resolved) as Record<string, unknown>;
    const includes = content.include;
    delete content.include;
    for (const inc of includes === undefined ? [] : Array.isArray(includes) ? includes : [includes]) {
      const spec = typeof inc === 'string' ? { local: inc } : (inc as Record<string, unknown>);
      if (!spec || typeof spec !== 'object' || typeof spec.local !== 'string') {
        throw new CiError(
          `Included file kind ${JSON.stringify(Object.keys(spec ?? {}))} is not supported by the GitLab emulator (local only)`,
        );
      }
      const local = spec.local.replace(/^\//, '');
      const included = read(local);
      if (included === undefined) throw new CiError(`Local file \`${local}\` does not exist!`);
      load(local, included, (spec.inputs as Record<string, unknown>) ?? {});
    }
    // Later definitions (the including file) override earlier ones, key by key.
    for (const [k, v] of Object.entries(content)) {
      const prev = merged[k];
      merged[k] =
        prev && v && typeof prev === 'object' && typeof v === 'object' && !Array.isArray(prev) && !Array.isArray(v)
          ? { ...(prev as object), ...(v as object) }
          : v;
    }
  };
  load(root, rootText, inputs);

  const variables = stringMap(merged.variables);
  const allVars = { ...variables, ...vars };
  const workflow = (merged.workflow ?? {}) as { name?: unknown; rules?: unknown };
  if (!rulesAllow(workflow.rules, allVars, 'workflow')) throw new CiError('Pipeline filtered out by workflow rules.');
  const stages = Array.isArray(merged.stages)
    ? ['.pre', ...merged.stages.map(String).filter((s) => s !== '.pre' && s !== '.post'), '.post']
    : DEFAULT_STAGES;
  const defaults = (merged.default ?? {}) as { image?: unknown; before_script?: unknown };
  const jobs: CiJob[] = [];
  let anyJob = false;
  for (const [name, raw] of Object.entries(merged)) {
    if (RESERVED.has(name) || name.startsWith('.')) continue;
    if (!raw || typeof raw !== 'object' || Array.isArray(raw))
      throw new CiError(`jobs:${name} config should be a hash`);
    anyJob = true;
    const job = raw as Record<string, unknown>;
    if (job.script === undefined && job.trigger === undefined) {
      throw new CiError(`jobs:${name} config should implement the script:, run:, or trigger: keyword`);
    }
    const stage = typeof job.stage === 'string' ? job.stage : 'test';
    if (!stages.includes(stage))
      throw new CiError(`${name} job: chosen stage ${stage} does not exist; available stages are ${stages.join(', ')}`);
    const jobVars = { ...allVars, ...stringMap(job.variables) };
    if (!rulesAllow(job.rules, jobVars, `jobs:${name}`) || job.when === 'never' || job.when === 'manual') continue;
    jobs.push({
      name,
      stage,
      script: [...lines(job.before_script ?? merged.before_script ?? defaults.before_script), ...lines(job.script)],
      variables: { ...variables, ...stringMap(job.variables) },
      image: imageName(job.image) ?? imageName(defaults.image),
    });
  }
  if (!anyJob) throw new CiError('jobs config should contain at least one visible job');
  if (!jobs.length) {
    throw new CiError(
      'Pipeline will not run for the selected trigger. The rules configuration prevented any jobs from being added to the pipeline.',
    );
  }
  jobs.sort((a, b) => stages.indexOf(a.stage) - stages.indexOf(b.stage));
  // A name that interpolates to blank leaves the pipeline unnamed (gitlab-org/gitlab!105096).
  return {
    // `workflow:name` may use CI/CD variables (GitLab docs, "workflow:name"), expanded at pipeline creation.
    name:
      typeof workflow.name === 'string' && expand(workflow.name, allVars).trim()
        ? expand(workflow.name, allVars)
        : null,
    stages: stages.filter((s) => jobs.some((j) => j.stage === s)),
    jobs,
    variables,
  };
}

/** `$VAR` and `${VAR}` expanded with `vars` (unknown ones become empty, as in a shell). */
export function expand(text: string, vars: Record<string, string>): string {
  return text.replace(
    /\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))/g,
    (_m, a?: string, b?: string) => vars[(a ?? b)!] ?? '',
  );
}

/**
 * A CI/CD variable's value as GitLab expands it before the job sees it: `$$` is a literal `$`, `$VAR`/`${VAR}`
 * references another variable (left as is when unknown, as GitLab does).
 */
export function expandVariable(text: string, vars: Record<string, string>): string {
  return text.replace(
    /\$\$|\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))/g,
    (m, a?: string, b?: string) => (m === '$$' ? '$' : (vars[(a ?? b)!] ?? m)),
  );
}
