/**
 * The emulator's small HTTP toolkit: routes named by their OpenAPI path template (the same string the contract check
 * looks up), GitHub's error shape, and pagination links.
 */
import type { IncomingMessage } from 'node:http';
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

export interface Reply {
  status: number;
  /** JSON body; validated against the operation's schema. */
  body?: unknown;
  /** Raw bytes (e.g. `application/vnd.github.raw`), sent as they are and not validated. */
  raw?: { contentType: string; data: Buffer };
  headers?: Record<string, string>;
}

export type Handler = (ctx: Ctx) => Reply | Promise<Reply>;

export interface Route {
  method: string;
  /** OpenAPI path template, e.g. `/repos/{owner}/{repo}/actions/runs/{run_id}`. */
  operation: string;
  pattern: RegExp;
  keys: string[];
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

/** A reply a handler gives up with from deep inside (a body the operation refuses); the server sends it as it is. */
export class Refusal extends Error {
  readonly reply: Reply;
  constructor(reply: Reply) {
    super(`refused with ${reply.status}`);
    this.reply = reply;
  }
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

export class Router {
  readonly routes: Route[] = [];

  add(method: string, operation: string, handler: Handler, opts: RouteOptions = {}): void {
    const keys: string[] = [];
    const source = operation.replace(/\{(\w+)\}/g, (_m, key: string) => {
      keys.push(key);
      // `path` in the contents API spans slashes; so does a git ref (`heads/feature/x`).
      return key === 'path' || key === 'ref' ? '(.+)' : '([^/]+)';
    });
    this.routes.push({
      method,
      operation,
      pattern: new RegExp(`^${source}$`),
      keys,
      handler,
      auth: opts.auth ?? 'token',
      permission: opts.permission,
    });
  }

  /** The route for a request, its path parameters, or `malformed` when a parameter is not valid percent-encoding. */
  match(method: string, pathname: string): { route: Route; params: Record<string, string> } | 'malformed' | undefined {
    // GitHub ignores a trailing slash.
    const path = pathname.length > 1 ? pathname.replace(/\/+$/, '') : pathname;
    for (const route of this.routes) {
      if (route.method !== method) continue;
      const m = route.pattern.exec(path);
      if (!m) continue;
      try {
        return { route, params: Object.fromEntries(route.keys.map((k, i) => [k, decodeURIComponent(m[i + 1]!)])) };
      } catch {
        return 'malformed';
      }
    }
    return undefined;
  }
}

/** `per_page` (1..100, default 30) and `page` (from 1) of a list request; invalid values fall back like GitHub's. */
export function pageOf(query: URLSearchParams): { perPage: number; page: number } {
  const perPage = Number.parseInt(query.get('per_page') ?? '', 10);
  const page = Number.parseInt(query.get('page') ?? '', 10);
  return {
    perPage: Number.isFinite(perPage) && perPage > 0 ? Math.min(100, perPage) : 30,
    page: Number.isFinite(page) && page > 0 ? page : 1,
  };
}

/** One page of `items` and GitHub's `Link` header (`next`, `last`, `first`, `prev`) for it. */
export function paginate<T>(
  items: T[],
  ctx: Pick<Ctx, 'query' | 'url'>,
  api: string,
): { items: T[]; headers: Record<string, string> } {
  const { perPage, page } = pageOf(ctx.query);
  const last = Math.max(1, Math.ceil(items.length / perPage));
  const link = (p: number, rel: string) => {
    const u = new URL(ctx.url.pathname + ctx.url.search, api);
    u.searchParams.set('per_page', String(perPage));
    u.searchParams.set('page', String(p));
    return `<${u.toString()}>; rel="${rel}"`;
  };
  const links: string[] = [];
  if (page < last) links.push(link(page + 1, 'next'), link(last, 'last'));
  if (page > 1) links.push(link(1, 'first'), link(Math.min(page - 1, last), 'prev'));
  return {
    items: items.slice((page - 1) * perPage, page * perPage),
    headers: links.length ? { link: links.join(', ') } : {},
  };
}
