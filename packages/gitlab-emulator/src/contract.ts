/**
 * Contract checks. GitLab publishes no usable OpenAPI description of the endpoints Flui uses (its `openapi_v2.yaml`
 * lives inside its own repository and has weak schemas, and none for webhooks), so these JSON Schemas are written
 * from GitLab's REST API documentation — each endpoint's attribute table and example response (doc/api/projects.md,
 * repository_files.md, commits.md, branches.md, merge_requests.md, project_level_variables.md, pipelines.md,
 * jobs.md) and the "Pipeline events" payload of doc/user/project/integrations/webhook_events.md — for every field
 * Flui reads or the emulator returns. Every response the emulator sends, and every webhook payload, is validated
 * with ajv at run time; the test helper fails the test during which a violation happened.
 */
import { createRequire } from 'node:module';
import assert from 'node:assert/strict';
import type { ValidateFunction } from 'ajv';
import { ContractTally } from '@flui/emulator-kit/contract';

const require = createRequire(import.meta.url);

type Schema = Record<string, unknown>;
const str = { type: 'string' };
const nstr = { type: ['string', 'null'] };
const int = { type: 'integer' };
const nint = { type: ['integer', 'null'] };
const num = { type: ['number', 'null'] };
const bool = { type: 'boolean' };
const dateTime = { type: 'string', format: 'date-time' };
const nDateTime = { type: ['string', 'null'], format: 'date-time' };
const sha = { type: 'string', pattern: '^[0-9a-f]{40}$' };
const url = { type: 'string', format: 'uri' };
const obj = (properties: Record<string, unknown>, required = Object.keys(properties)): Schema => ({
  type: 'object',
  required,
  properties,
});
const list = (items: Schema): Schema => ({ type: 'array', items });

const userSchema = obj({ id: int, username: str, name: str, state: str, avatar_url: nstr, web_url: url });

/** Pipeline statuses (pipelines.md: `status` filter values). */
const pipelineStatus = {
  enum: [
    'created',
    'waiting_for_resource',
    'preparing',
    'pending',
    'running',
    'success',
    'failed',
    'canceled',
    'canceling',
    'skipped',
    'manual',
    'scheduled',
  ],
};

const projectSchema = obj(
  {
    id: int,
    name: str,
    path: str,
    path_with_namespace: str,
    name_with_namespace: str,
    default_branch: nstr,
    web_url: url,
    http_url_to_repo: url,
    created_at: dateTime,
    last_activity_at: dateTime,
    visibility: { enum: ['private', 'internal', 'public'] },
    empty_repo: bool,
    archived: bool,
    namespace: obj({ id: int, name: str, path: str, kind: { enum: ['group', 'user'] }, full_path: str, web_url: url }),
    ci_config_path: nstr,
    ci_pipeline_variables_minimum_override_role: { enum: ['no_one_allowed', 'developer', 'maintainer', 'owner'] },
  },
  ['id', 'name', 'path', 'path_with_namespace', 'default_branch', 'web_url', 'namespace', 'visibility'],
);

const fileSchema = obj({
  file_name: str,
  file_path: str,
  size: int,
  encoding: { const: 'base64' },
  content: str,
  content_sha256: { type: 'string', pattern: '^[0-9a-f]{64}$' },
  ref: str,
  blob_id: sha,
  commit_id: sha,
  last_commit_id: sha,
});

const commitCore = {
  id: sha,
  short_id: str,
  title: str,
  message: str,
  parent_ids: list(sha),
  author_name: str,
  author_email: str,
  authored_date: dateTime,
  committer_name: str,
  committer_email: str,
  committed_date: dateTime,
  created_at: dateTime,
  web_url: url,
};
const commitSchema = obj({
  ...commitCore,
  stats: obj({ additions: int, deletions: int, total: int }),
  status: nstr,
  project_id: int,
});

const branchSchema = obj({
  name: str,
  merged: bool,
  protected: bool,
  default: bool,
  can_push: bool,
  web_url: url,
  commit: obj(commitCore, ['id', 'short_id', 'title', 'message', 'parent_ids', 'committed_date']),
});

const mergeRequestSchema = obj({
  id: int,
  iid: int,
  project_id: int,
  title: str,
  description: nstr,
  state: { enum: ['opened', 'closed', 'locked', 'merged'] },
  created_at: dateTime,
  updated_at: dateTime,
  web_url: url,
  source_branch: str,
  target_branch: str,
  sha: str,
  author: userSchema,
  references: obj({ short: str, relative: str, full: str }),
});

const variableSchema: Schema = {
  ...obj(
    {
      variable_type: { enum: ['env_var', 'file'] },
      key: { type: 'string', pattern: '^[A-Za-z0-9_]+$' },
      value: nstr,
      protected: bool,
      masked: bool,
      hidden: bool,
      raw: bool,
      environment_scope: str,
      description: nstr,
    },
    ['variable_type', 'key', 'value', 'protected', 'masked', 'raw', 'environment_scope'],
  ),
  // "The value of a hidden variable is never shown" (project_level_variables.md): null, and only then.
  if: { properties: { hidden: { const: true } }, required: ['hidden'] },
  then: { properties: { value: { type: 'null' }, masked: { const: true } } },
  else: { properties: { value: str } },
};

const pipelineSummarySchema = obj(
  {
    id: int,
    iid: int,
    project_id: int,
    sha,
    ref: str,
    status: pipelineStatus,
    source: str,
    created_at: dateTime,
    updated_at: dateTime,
    web_url: url,
    name: nstr,
  },
  ['id', 'iid', 'project_id', 'sha', 'ref', 'status', 'source', 'created_at', 'updated_at', 'web_url'],
);
const pipelineSchema = obj(
  {
    ...(pipelineSummarySchema.properties as object),
    before_sha: sha,
    tag: bool,
    user: userSchema,
    started_at: nDateTime,
    finished_at: nDateTime,
    duration: nint,
    queued_duration: num,
    detailed_status: obj({
      icon: str,
      text: str,
      label: str,
      group: str,
      tooltip: str,
      has_details: bool,
      details_path: str,
      favicon: str,
    }),
  },
  [
    ...(pipelineSummarySchema.required as string[]),
    'before_sha',
    'tag',
    'user',
    'started_at',
    'finished_at',
    'detailed_status',
  ],
);

const jobSchema = obj(
  {
    id: int,
    name: str,
    stage: str,
    status: pipelineStatus,
    ref: str,
    tag: bool,
    allow_failure: bool,
    created_at: dateTime,
    started_at: nDateTime,
    finished_at: nDateTime,
    duration: num,
    queued_duration: num,
    web_url: url,
    user: userSchema,
    commit: obj(commitCore, ['id', 'short_id', 'title', 'message']),
    pipeline: obj({ id: int, project_id: int, ref: str, sha, status: pipelineStatus }),
    failure_reason: str,
    artifacts: list({ type: 'object' }),
  },
  ['id', 'name', 'stage', 'status', 'ref', 'created_at', 'started_at', 'finished_at', 'web_url', 'pipeline', 'commit'],
);

const hookSchema = obj(
  {
    id: int,
    url,
    project_id: int,
    push_events: bool,
    pipeline_events: bool,
    job_events: bool,
    merge_requests_events: bool,
    enable_ssl_verification: bool,
    alert_status: { enum: ['executable', 'temporarily_disabled', 'disabled'] },
    disabled_until: nDateTime,
    created_at: dateTime,
    name: str,
    description: str,
    url_variables: list({ type: 'object' }),
  },
  [
    'id',
    'url',
    'project_id',
    'push_events',
    'pipeline_events',
    'enable_ssl_verification',
    'alert_status',
    'created_at',
  ],
);
// The secret token is write-only: a hook body that carries it is a leak.
hookSchema.not = { required: ['token'] };

/** GitLab's error bodies: `{message: string | {attr: [reasons]} | [reasons]}` or Grape's `{error: string}`. */
const errorSchema: Schema = {
  type: 'object',
  anyOf: [
    obj({ message: { anyOf: [str, list(str), { type: 'object', additionalProperties: list(str) }] } }),
    obj({ error: str }),
  ],
};

/** Operation → status → schema (an absent status: the operation never answers it). */
const OPERATIONS: Record<string, Record<number, Schema | null>> = {
  'GET /projects/:id': { 200: projectSchema },
  'GET /projects/:id/repository/files/:file_path': { 200: fileSchema },
  'GET /projects/:id/repository/files/:file_path/raw': { 200: null },
  'POST /projects/:id/repository/files/:file_path': { 201: obj({ file_path: str, branch: str }) },
  'PUT /projects/:id/repository/files/:file_path': { 200: obj({ file_path: str, branch: str }) },
  'POST /projects/:id/repository/commits': { 201: commitSchema },
  'GET /projects/:id/repository/branches/:branch': { 200: branchSchema },
  'GET /projects/:id/merge_requests': { 200: list(mergeRequestSchema) },
  'POST /projects/:id/merge_requests': { 201: mergeRequestSchema, 409: errorSchema },
  'GET /projects/:id/variables': { 200: list(variableSchema) },
  'GET /projects/:id/variables/:key': { 200: variableSchema },
  'POST /projects/:id/variables': { 201: variableSchema },
  'PUT /projects/:id/variables/:key': { 200: variableSchema },
  'DELETE /projects/:id/variables/:key': { 204: null },
  'POST /projects/:id/pipeline': { 201: pipelineSchema },
  'GET /projects/:id/pipelines': { 200: list(pipelineSummarySchema) },
  'GET /projects/:id/pipelines/:pipeline_id': { 200: pipelineSchema },
  'POST /projects/:id/pipelines/:pipeline_id/cancel': { 200: pipelineSchema },
  'GET /projects/:id/pipelines/:pipeline_id/jobs': { 200: list(jobSchema) },
  'GET /projects/:id/jobs/:job_id/trace': { 200: null },
  'GET /projects/:id/hooks': { 200: list(hookSchema) },
  'GET /projects/:id/hooks/:hook_id': { 200: hookSchema },
  'POST /projects/:id/hooks': { 201: hookSchema },
  'PUT /projects/:id/hooks/:hook_id': { 200: hookSchema },
  'DELETE /projects/:id/hooks/:hook_id': { 204: null },
};

/** Statuses any operation may answer with GitLab's error body (auth, validation, limits, outages). */
const GENERIC = new Set([400, 401, 403, 404, 405, 409, 413, 422, 500, 502, 503]);

const WEBHOOKS: Record<string, Schema> = {
  'Pipeline Hook': obj({
    object_kind: { const: 'pipeline' },
    object_attributes: obj({
      id: int,
      iid: int,
      name: nstr,
      ref: str,
      tag: bool,
      sha,
      before_sha: sha,
      source: str,
      status: pipelineStatus,
      detailed_status: str,
      stages: list(str),
      created_at: { type: 'string', pattern: '^\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d UTC$' },
      finished_at: { type: ['string', 'null'] },
      duration: nint,
      variables: list(obj({ key: str, value: str })),
      url: url,
    }),
    merge_request: { type: ['object', 'null'] },
    user: userSchema,
    project: obj({ id: int, name: str, web_url: url, path_with_namespace: str, default_branch: str }),
    commit: obj({ id: sha, message: str, timestamp: dateTime, url, author: obj({ name: str, email: str }) }),
    builds: list(
      obj(
        {
          id: int,
          stage: str,
          name: str,
          status: pipelineStatus,
          created_at: str,
          started_at: nstr,
          finished_at: nstr,
          failure_reason: nstr,
        },
        ['id', 'stage', 'name', 'status', 'created_at'],
      ),
    ),
  }),
};

let ajv: { compile(schema: unknown): ValidateFunction } | undefined;
const compiled = new Map<string, ValidateFunction>();

function validator(key: string, schema: Schema): ValidateFunction {
  let v = compiled.get(key);
  if (!v) {
    if (!ajv) {
      const Ajv = require('ajv').default as new (opts: object) => NonNullable<typeof ajv>;
      const addFormats = require('ajv-formats').default as (a: unknown) => void;
      ajv = new Ajv({ strict: false, allErrors: false });
      addFormats(ajv);
    }
    v = ajv.compile(schema);
    compiled.set(key, v);
  }
  return v;
}

/** `operations` holds `METHOD /documented/path` of each operation checked. */
export class ContractChecker extends ContractTally {
  #validate(key: string, schema: Schema, body: unknown, label: string): void {
    this.report(validator(key, schema), body, label);
  }

  /** Checks one response of `method operation` (the documented path). `body` undefined: none was sent. */
  check(method: string, operation: string, status: number, body: unknown): void {
    const op = `${method.toUpperCase()} ${operation}`;
    this.checked(op);
    const statuses = OPERATIONS[op];
    if (!statuses) return this.violation(`${op}: not an operation the contract describes`);
    if (status in statuses) {
      const schema = statuses[status];
      if (schema === null) {
        if (body !== undefined && status === 204) this.violation(`${op} -> 204: a body was sent`);
        return;
      }
      if (body === undefined) return this.violation(`${op} -> ${status}: no body`);
      return this.#validate(`${op} ${status}`, schema!, body, `${op} -> ${status}`);
    }
    if (GENERIC.has(status)) return this.#validate('error', errorSchema, body, `${op} -> ${status}`);
    if (status === 429) return; // Rack::Attack's plain-text "Retry later"
    this.violation(`${op} -> ${status}: GitLab does not answer this status here`);
  }

  /** Checks a webhook payload, e.g. `Pipeline Hook`. */
  checkWebhook(event: string, body: unknown): void {
    const op = `WEBHOOK ${event}`;
    this.checked(op);
    const schema = WEBHOOKS[event];
    if (!schema) return this.violation(`${op}: not a webhook the contract describes`);
    this.#validate(op, schema, body, op);
  }
}

/** For tests: fails when `checker` saw a violation; returns what it checked (operations, responses). */
export function assertContract(checker: ContractChecker): { operations: number; responses: number } {
  const { operations, responses, violations } = checker.summary();
  assert.deepEqual(violations, [], 'GitLab emulator responses must match the contract schemas');
  return { operations, responses };
}
