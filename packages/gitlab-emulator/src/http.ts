/**
 * The emulator's small HTTP toolkit: routes named by GitLab's documented path (`/projects/:id/pipelines/:pipeline_id`,
 * the same string the contract check looks schemas up by), GitLab's error bodies, and offset pagination headers.
 *
 * GitLab's error bodies (from its REST API docs, "Status codes" and "Data validation and error reporting"):
 * `{"message": "404 Project Not Found"}`, `{"message": "401 Unauthorized"}`, a missing or invalid parameter
 * `{"error": "ref is missing"}` (400), and validation failures `{"message": {"<attribute>": ["<reason>"]}}` (400).
 */
import type { IncomingMessage } from 'node:http';
import type { Project, Token } from './store.ts';

export interface Ctx {
  method: string;
  params: Record<string, string>;
  query: URLSearchParams;
  /** JSON or form body merged with the query string, as Grape reads parameters from both. */
  body: Record<string, unknown>;
  project?: Project;
  token?: string;
  grant?: Token;
  headers: IncomingMessage['headers'];
  url: URL;
}

export interface Reply {
  status: number;
  /** JSON body; validated against the operation's schema. */
  body?: unknown;
  /** Raw bytes (a raw file, a job trace), sent as they are and not validated. */
  raw?: { contentType: string; data: Buffer };
  headers?: Record<string, string>;
}

export type Handler = (ctx: Ctx) => Reply | Promise<Reply>;

/** What a route needs of the token: a read scope (`read_api`/`api`) or a write scope (`api`). */
export type Access = 'read' | 'write';

export interface Route {
  method: string;
  /** GitLab's documented path, e.g. `/projects/:id/pipelines/:pipeline_id`. */
  operation: string;
  pattern: RegExp;
  keys: string[];
  handler: Handler;
  access: Access;
}

export function message(status: number, text: string, headers?: Record<string, string>): Reply {
  return { status, body: { message: text }, headers };
}

/** Grape's answer to a missing or malformed parameter. */
export function badParam(text: string): Reply {
  return { status: 400, body: { error: text } };
}

/** An ActiveRecord validation failure: `{"message": {"<attribute>": ["<reason>", ...]}}`. */
export function invalid(attribute: string, ...reasons: string[]): Reply {
  return { status: 400, body: { message: { [attribute]: reasons } } };
}

export const notFound = (what: string): Reply => message(404, `404 ${what} Not Found`);

/** A reply a handler gives up with from deep inside; the server sends it as it is. */
export class Refusal extends Error {
  readonly reply: Reply;
  constructor(reply: Reply) {
    super(`refused with ${reply.status}`);
    this.reply = reply;
  }
}

export class Router {
  readonly routes: Route[] = [];

  add(method: string, operation: string, handler: Handler, access: Access = 'read'): void {
    const keys: string[] = [];
    const source = operation.replace(/:(\w+)/g, (_m, key: string) => {
      keys.push(key);
      return '([^/]+)';
    });
    this.routes.push({ method, operation, pattern: new RegExp(`^/api/v4${source}$`), keys, handler, access });
  }

  /** The route for a request and its decoded path parameters, or `malformed` for bad percent-encoding. */
  match(method: string, pathname: string): { route: Route; params: Record<string, string> } | 'malformed' | undefined {
    const path = pathname.length > 1 ? pathname.replace(/\/+$/, '') : pathname;
    // GitLab answers HEAD wherever it answers GET (Grape adds HEAD routes), with no body.
    const wanted = method === 'HEAD' ? ['HEAD', 'GET'] : [method];
    for (const m of wanted) {
      for (const route of this.routes) {
        if (route.method !== m) continue;
        const found = route.pattern.exec(path);
        if (!found) continue;
        try {
          return {
            route,
            params: Object.fromEntries(route.keys.map((k, i) => [k, decodeURIComponent(found[i + 1]!)])),
          };
        } catch {
          return 'malformed';
        }
      }
    }
    return undefined;
  }
}

/** `per_page` (1..100, default 20) and `page` (from 1), as GitLab's offset pagination reads them. */
export function pageOf(query: URLSearchParams): { perPage: number; page: number } {
  const perPage = Number.parseInt(query.get('per_page') ?? '', 10);
  const page = Number.parseInt(query.get('page') ?? '', 10);
  return {
    perPage: Number.isFinite(perPage) && perPage > 0 ? Math.min(100, perPage) : 20,
    page: Number.isFinite(page) && page > 0 ? page : 1,
  };
}

/**
 * One page of `items` with GitLab's pagination headers: `x-page`, `x-per-page`, `x-next-page`, `x-prev-page`,
 * `x-total`, `x-total-pages` and `link` (rel next/prev/first/last), per "Pagination" in GitLab's REST API docs.
 */
export function paginate<T>(
  items: T[],
  ctx: Pick<Ctx, 'query' | 'url'>,
  base: string,
): { items: T[]; headers: Record<string, string> } {
  const { perPage, page } = pageOf(ctx.query);
  const last = Math.max(1, Math.ceil(items.length / perPage));
  const link = (p: number, rel: string) => {
    const u = new URL(ctx.url.pathname + ctx.url.search, base);
    u.searchParams.set('page', String(p));
    u.searchParams.set('per_page', String(perPage));
    return `<${u.toString()}>; rel="${rel}"`;
  };
  const links: string[] = [];
  if (page > 1) links.push(link(page - 1, 'prev'));
  if (page < last) links.push(link(page + 1, 'next'));
  links.push(link(1, 'first'), link(last, 'last'));
  return {
    items: items.slice((page - 1) * perPage, page * perPage),
    headers: {
      'x-page': String(page),
      'x-per-page': String(perPage),
      'x-next-page': page < last ? String(page + 1) : '',
      'x-prev-page': page > 1 ? String(page - 1) : '',
      'x-total': String(items.length),
      'x-total-pages': String(last),
      link: links.join(', '),
    },
  };
}
