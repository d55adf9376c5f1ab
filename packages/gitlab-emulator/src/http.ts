/**
 * The emulator's small HTTP toolkit: routes named by GitLab's documented path (`/projects/:id/pipelines/:pipeline_id`,
 * the same string the contract check looks schemas up by), GitLab's error bodies, and offset pagination headers.
 *
 * GitLab's error bodies (from its REST API docs, "Status codes" and "Data validation and error reporting"):
 * `{"message": "404 Project Not Found"}`, `{"message": "401 Unauthorized"}`, a missing or invalid parameter
 * `{"error": "ref is missing"}` (400), and validation failures `{"message": {"<attribute>": ["<reason>"]}}` (400).
 */
import type { IncomingMessage } from 'node:http';
import { Refusal, RouteTable, pageSlice, type Reply, type RoutePattern } from '@flui/emulator-kit/http';
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

export { Refusal, type Reply };

export type Handler = (ctx: Ctx) => Reply | Promise<Reply>;

/** What a route needs of the token: a read scope (`read_api`/`api`) or a write scope (`api`). */
export type Access = 'read' | 'write';

/** `operation`: GitLab's documented path, e.g. `/projects/:id/pipelines/:pipeline_id`. */
export interface Route extends RoutePattern {
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

export class Router extends RouteTable<Route> {
  constructor() {
    // GitLab answers HEAD wherever it answers GET (Grape adds HEAD routes), with no body.
    super({ param: /:(\w+)/g, prefix: '/api/v4', headAsGet: true });
  }

  add(method: string, operation: string, handler: Handler, access: Access = 'read'): void {
    this.routes.push({ method, operation, ...this.compile(operation), handler, access });
  }
}

/**
 * One page of `items` (`per_page` 1..100, default 20) with GitLab's pagination headers: `x-page`, `x-per-page`, `x-next-page`, `x-prev-page`,
 * `x-total`, `x-total-pages` and `link` (rel next/prev/first/last), per "Pagination" in GitLab's REST API docs.
 */
export function paginate<T>(
  items: T[],
  ctx: Pick<Ctx, 'query' | 'url'>,
  base: string,
): { items: T[]; headers: Record<string, string> } {
  const { page, perPage, last, link, ...slice } = pageSlice(items, ctx.query, ctx.url, base, 20);
  const links: string[] = [];
  if (page > 1) links.push(link(page - 1, 'prev'));
  if (page < last) links.push(link(page + 1, 'next'));
  links.push(link(1, 'first'), link(last, 'last'));
  return {
    items: slice.items,
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
