/**
 * The emulator's small HTTP toolkit: routes named by their OpenAPI path template (the same string the contract check
 * looks up), GitHub's error shape, and pagination links.
 */
import type { IncomingMessage } from 'node:http';
import { Refusal, RouteTable, pageSlice, type Reply, type RoutePattern } from '@flui/emulator-kit/http';
import type { z } from 'zod';
import type { PermissionArea, Repo, Token } from './store.ts';

export const DOCS = 'https://docs.github.com/rest';

export interface Ctx {
  method: string;
  params: Record<string, string>;
  query: URLSearchParams;
  body: Record<string, unknown>;
  /** The repository `{owner}/{repo}` names, checked visible to the token. */
  repo?: Repo;
  token?: string;
  grant?: Token;
  /** The GitHub App a JWT authenticated (routes with `auth: 'jwt'`). */
  appId?: string;
  headers: IncomingMessage['headers'];
  /** The request URL (for pagination links). */
  url: URL;
}

export { Refusal, type Reply };

export type Handler = (ctx: Ctx) => Reply | Promise<Reply>;

/** `operation`: the OpenAPI path template, e.g. `/repos/{owner}/{repo}/actions/runs/{run_id}`. */
export interface Route extends RoutePattern {
  handler: Handler;
  /** `token`: a token in Authorization; `jwt`: a GitHub App JWT; `none`: anyone (and free, like /rate_limit). */
  auth: 'token' | 'jwt' | 'none';
  /** The fine-grained permission the operation needs. */
  permission?: { area: PermissionArea; level: 'read' | 'write' };
}

export interface RouteOptions {
  auth?: Route['auth'];
  permission?: Route['permission'];
}

/** GitHub's error body: `message` and `documentation_url` (and `status`, as GitHub sends today). */
export function error(status: number, message: string, headers?: Record<string, string>, docs = DOCS): Reply {
  return { status, body: { message, documentation_url: docs, status: String(status) }, headers };
}

/** GitHub's 422 with an `errors` list, as for invalid fields. */
export function invalid(message: string, errors: Record<string, unknown>[] = []): Reply {
  return {
    status: 422,
    body: { message, errors, documentation_url: DOCS, status: '422' },
  };
}

/** GitHub's codes for one field in a "Validation Failed" 422's `errors`. */
const FIELD_CODES = new Set(['missing', 'missing_field', 'invalid', 'already_exists', 'unprocessable']);

const article = (type: string) =>
  ({ object: 'an object', record: 'an object', array: 'an array', int: 'an integer' })[type] ?? `a ${type}`;

/** GitHub's words for a field its request schema refuses, where the operation's schema gives none of its own. */
function schemaMessage(issue: z.core.$ZodRawIssue): string {
  const field = (issue.path ?? []).join('/');
  if (issue.input === undefined) return `Invalid request.\n\n"${field}" wasn't supplied.`;
  const value = JSON.stringify(issue.input);
  if (issue.code === 'invalid_type') {
    return `Invalid request.\n\nFor 'properties/${field}', ${value} is not ${article(issue.expected)}.`;
  }
  return `Invalid request.\n\nFor 'properties/${field}', ${value} is not a valid value.`;
}

/**
 * The request body as the operation's schema reads it; otherwise a `Refusal` with GitHub's 422. An error a schema
 * names itself is the 422's message, except one of GitHub's field codes (`missing_field`, `invalid`…): those become
 * the `errors` of a "Validation Failed" about `resource`, one per field.
 */
export function parseBody<S extends z.ZodType>(schema: S, body: unknown, resource?: string): z.output<S> {
  const parsed = schema.safeParse(body, { reportInput: true, error: schemaMessage });
  if (parsed.success) return parsed.data;
  const { issues } = parsed.error;
  const fields = issues.filter((i) => FIELD_CODES.has(i.message));
  if (resource && fields.length) {
    throw new Refusal(
      invalid(
        'Validation Failed',
        fields.map((i) => ({ resource, field: i.path.join('.'), code: i.message })),
      ),
    );
  }
  throw new Refusal(invalid(issues[0]!.message));
}

export class Router extends RouteTable<Route> {
  constructor() {
    // `path` in the contents API spans slashes; so does a git ref (`heads/feature/x`).
    super({ param: /\{(\w+)\}/g, spans: ['path', 'ref'] });
  }

  add(method: string, operation: string, handler: Handler, opts: RouteOptions = {}): void {
    this.routes.push({
      method,
      operation,
      ...this.compile(operation),
      handler,
      auth: opts.auth ?? 'token',
      permission: opts.permission,
    });
  }
}

/** One page of `items` (`per_page` 1..100, default 30) and GitHub's `Link` header (`next`, `last`, `first`, `prev`). */
export function paginate<T>(
  items: T[],
  ctx: Pick<Ctx, 'query' | 'url'>,
  api: string,
): { items: T[]; headers: Record<string, string> } {
  const { page, last, link, ...slice } = pageSlice(items, ctx.query, ctx.url, api, 30);
  const links: string[] = [];
  if (page < last) links.push(link(page + 1, 'next'), link(last, 'last'));
  if (page > 1) links.push(link(1, 'first'), link(Math.min(page - 1, last), 'prev'));
  return { items: slice.items, headers: links.length ? { link: links.join(', ') } : {} };
}
