/**
 * Contract checks: every response the emulator sends is validated against the schema GitHub publishes for that
 * operation and status (`@octokit/openapi`, api.github.com, dereferenced), and every webhook it delivers against the
 * description's webhook payload schema. Schemas are compiled lazily, once per operation and status, because
 * compiling the whole description would take long.
 */
import { createRequire } from 'node:module';
import type { ValidateFunction } from 'ajv';
import { ContractTally } from '@flui/emulator-kit/contract';

const require = createRequire(import.meta.url);

interface OpenApiOperation {
  responses: Record<string, { content?: Record<string, { schema?: unknown }> }>;
}
type OpenApi = {
  paths: Record<string, Record<string, OpenApiOperation>>;
  'x-webhooks': Record<string, { post: { requestBody: { content: Record<string, { schema: unknown }> } } }>;
};

let description: OpenApi | undefined;
let ajv: { compile(schema: unknown): ValidateFunction } | undefined;
const compiled = new Map<string, ValidateFunction | null>();

function load(): { description: OpenApi; ajv: NonNullable<typeof ajv> } {
  if (!description) description = require('@octokit/openapi/generated/api.github.com.deref.json') as OpenApi;
  if (!ajv) {
    const Ajv = require('ajv').default as new (opts: object) => NonNullable<typeof ajv>;
    const addFormats = require('ajv-formats').default as (a: unknown) => void;
    ajv = new Ajv({ strict: false, allErrors: false, validateFormats: true });
    addFormats(ajv);
  }
  return { description, ajv };
}

/**
 * Statuses GitHub returns on any operation without documenting them on each (304 to a conditional request, bad
 * JSON, bad credentials, an invisible repository or absent secret, missing permissions, validation failures, rate
 * limits, outages); their bodies must still have GitHub's error shape.
 */
const GENERIC_STATUSES = new Set([304, 400, 401, 403, 404, 422, 429, 500, 502, 503]);
const GENERIC_ERROR = {
  content: {
    'application/json': {
      schema: {
        type: 'object',
        required: ['message', 'documentation_url'],
        properties: { message: { type: 'string' }, documentation_url: { type: 'string' }, status: { type: 'string' } },
      },
    },
  },
};

/**
 * Statuses GitHub answers with although the description does not list them for the operation; their bodies must
 * have GitHub's error shape. Each is GitHub's behaviour as its own clients (gh) report it.
 */
const UNDOCUMENTED: Record<string, number[]> = {
  // "HTTP 409: Already exists - Variable already exists" (gh variable set on an existing name with POST).
  'POST /repos/{owner}/{repo}/actions/variables': [409],
};

/** `operations` holds `METHOD /path/template` of each operation checked. */
export class ContractChecker extends ContractTally {
  #validate(key: string, schema: unknown, body: unknown, label: string): void {
    let validate = compiled.get(key);
    if (validate === undefined) {
      validate = load().ajv.compile(normalize(schema));
      compiled.set(key, validate);
    }
    if (validate) this.report(validate, body, label);
  }

  /** Checks one response of `method path` (the OpenAPI path template). */
  check(method: string, path: string, status: number, body: unknown): void {
    const { description: d } = load();
    const op = `${method.toUpperCase()} ${path}`;
    this.checked(op);
    const operation = d.paths[path]?.[method.toLowerCase()];
    if (!operation) {
      this.violation(`${op}: not an operation of GitHub's REST API`);
      return;
    }
    const response =
      operation.responses[String(status)] ??
      (GENERIC_STATUSES.has(status) || UNDOCUMENTED[op]?.includes(status) ? GENERIC_ERROR : undefined);
    if (!response) {
      this.violation(`${op} -> ${status}: GitHub does not document this status for the operation`);
      return;
    }
    // Whatever the description says of an error, GitHub's errors always carry `message` and `documentation_url`.
    if (status >= 400 && response !== GENERIC_ERROR) {
      this.#validate('error-shape', GENERIC_ERROR.content['application/json'].schema, body, `${op} -> ${status}`);
    }
    const schema = response.content?.['application/json']?.schema;
    if (!schema || body === undefined) return; // no body documented or none sent (204/302/304)
    this.#validate(`${op} ${status}`, schema, body, `${op} -> ${status}`);
  }

  /** Checks a webhook payload against the description's `x-webhooks` entry, e.g. `workflow-run-completed`. */
  checkWebhook(name: string, body: unknown): void {
    const { description: d } = load();
    const op = `WEBHOOK ${name}`;
    this.checked(op);
    const schema = d['x-webhooks'][name]?.post.requestBody.content['application/json']?.schema;
    if (!schema) {
      this.violation(`${op}: not a webhook GitHub describes`);
      return;
    }
    this.#validate(op, schema, body, op);
  }
}

/**
 * Adapts GitHub's description to what a strict JSON Schema validator accepts, without changing what it allows:
 * - `oneOf` where several alternatives accept the same body (e.g. the 409 of the contents API: basic-error or
 *   repository-rule-violation-error, neither with required fields) would reject GitHub's own responses for matching
 *   twice, so alternatives are checked as `anyOf`;
 * - OpenAPI's `nullable: true` next to no `type` (e.g. `allOf` of a referenced object) becomes "null, or the rest";
 * - `nullable: true` next to an `enum` that lists no null (a job's `conclusion` while it runs) allows null too, as
 *   OpenAPI 3.0 means it and GitHub answers (the validator would otherwise hold the value to the enum alone).
 */
function normalize(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(normalize);
  if (!schema || typeof schema !== 'object') return schema;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(schema)) out[k === 'oneOf' ? 'anyOf' : k] = normalize(v);
  if (out.nullable === true && Array.isArray(out.enum) && !out.enum.includes(null)) out.enum = [...out.enum, null];
  if (out.nullable === true && out.type === undefined) {
    delete out.nullable;
    return { anyOf: [{ type: 'null' }, out] };
  }
  return out;
}
