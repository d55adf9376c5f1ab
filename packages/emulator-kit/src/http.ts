/**
 * The HTTP pieces both emulators share: a reply, the refusal a handler throws from deep inside, a table of routes
 * named by their documented path (the same string the contract check looks schemas up by), and `page`/`per_page`.
 */

export interface Reply {
  status: number;
  /** JSON body; validated against the operation's schema. */
  body?: unknown;
  /** Raw bytes (a raw file, a log), sent as they are and not validated. */
  raw?: { contentType: string; data: Buffer };
  headers?: Record<string, string>;
}

/** A reply a handler gives up with from deep inside (a body the operation refuses); the server sends it as it is. */
export class Refusal extends Error {
  readonly reply: Reply;
  constructor(reply: Reply) {
    super(`refused with ${reply.status}`);
    this.reply = reply;
  }
}

/** What matching needs of a route; each emulator's routes add their handler and what they ask of the token. */
export interface RoutePattern {
  method: string;
  /** The documented path, e.g. `/repos/{owner}/{repo}` or `/projects/:id`. */
  operation: string;
  pattern: RegExp;
  keys: string[];
}

export interface RouteSyntax {
  /** How the documented path names a parameter (one capture group: its name), e.g. `/\{(\w+)\}/g` or `/:(\w+)/g`. */
  param: RegExp;
  /** What the served path has before the documented one (`/api/v4`). */
  prefix?: string;
  /** Parameters that span slashes (a file path, a git ref). */
  spans?: readonly string[];
  /** Whether HEAD finds the GET route where there is no HEAD route of its own. */
  headAsGet?: boolean;
}

export class RouteTable<R extends RoutePattern> {
  readonly routes: R[] = [];
  readonly #syntax: RouteSyntax;

  constructor(syntax: RouteSyntax) {
    this.#syntax = syntax;
  }

  /** The pattern and parameter names of a documented path. */
  compile(operation: string): Pick<RoutePattern, 'pattern' | 'keys'> {
    const keys: string[] = [];
    const source = operation.replace(this.#syntax.param, (_m, key: string) => {
      keys.push(key);
      return this.#syntax.spans?.includes(key) ? '(.+)' : '([^/]+)';
    });
    return { pattern: new RegExp(`^${this.#syntax.prefix ?? ''}${source}$`), keys };
  }

  /** The route for a request, its decoded path parameters, or `malformed` when one is not valid percent-encoding. */
  match(method: string, pathname: string): { route: R; params: Record<string, string> } | 'malformed' | undefined {
    // Both services ignore a trailing slash.
    const path = pathname.length > 1 ? pathname.replace(/\/+$/, '') : pathname;
    const wanted = method === 'HEAD' && this.#syntax.headAsGet ? ['HEAD', 'GET'] : [method];
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

/** `per_page` (1..100, else `defaultPerPage`) and `page` (from 1) of a list request; invalid values fall back. */
export function pageOf(query: URLSearchParams, defaultPerPage: number): { perPage: number; page: number } {
  const perPage = Number.parseInt(query.get('per_page') ?? '', 10);
  const page = Number.parseInt(query.get('page') ?? '', 10);
  return {
    perPage: Number.isFinite(perPage) && perPage > 0 ? Math.min(100, perPage) : defaultPerPage,
    page: Number.isFinite(page) && page > 0 ? page : 1,
  };
}

/** One page of `items`, the number of the last page, and a `Link` entry's maker for page `p` of the same request. */
export function pageSlice<T>(
  items: T[],
  query: URLSearchParams,
  url: URL,
  base: string,
  defaultPerPage: number,
): { items: T[]; page: number; perPage: number; last: number; link: (p: number, rel: string) => string } {
  const { perPage, page } = pageOf(query, defaultPerPage);
  const last = Math.max(1, Math.ceil(items.length / perPage));
  const link = (p: number, rel: string) => {
    const u = new URL(url.pathname + url.search, base);
    u.searchParams.set('per_page', String(perPage));
    u.searchParams.set('page', String(p));
    return `<${u.toString()}>; rel="${rel}"`;
  };
  return { items: items.slice((page - 1) * perPage, page * perPage), page, perPage, last, link };
}
