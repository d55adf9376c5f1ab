/**
 * A builder's credentials for plain git sources (FLUI_BUILD_SOURCE=git): FLUI_GIT_CREDENTIALS_FILE, in the format of
 * git's own credential store (`git help credential-store`): one `https://USER:PASSWORD@HOST[:PORT]` URL a line, user
 * and password percent-encoded; blank lines and `#` comments are skipped. Each credential goes to its own host, over
 * the protocol its line names, and nowhere else (source.ts sends it as an HTTP header for that origin only).
 * Problems name the file and the line number, never the line, which holds a password.
 */
import { readFileSync } from 'node:fs';

export interface GitCredential {
  username: string;
  password: string;
  /** `http:` or `https:`: the credential is sent over this protocol only. */
  protocol: 'http:' | 'https:';
}

/** Credentials by host (`host[:port]`, lowercase, as a URL's `host` spells it). */
export type GitCredentials = Record<string, GitCredential>;

export function parseGitCredentials(env: NodeJS.ProcessEnv): { value: GitCredentials; problems: string[] } {
  const value: GitCredentials = {};
  const problems: string[] = [];
  const file = env.FLUI_GIT_CREDENTIALS_FILE || undefined;
  if (!file) return { value, problems };
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    problems.push(`FLUI_GIT_CREDENTIALS_FILE: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    return { value, problems };
  }
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const where = `FLUI_GIT_CREDENTIALS_FILE: line ${i + 1} of ${file}`;
    let url: URL;
    try {
      url = new URL(line);
    } catch {
      problems.push(`${where} is not a URL such as https://user:token@git.internal`);
      return;
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      problems.push(`${where} must be an http(s) URL (git:// and ssh carry no password)`);
      return;
    }
    if (!url.username || !url.password) {
      problems.push(`${where} has no user name and password (https://user:token@host)`);
      return;
    }
    if ((url.pathname !== '/' && url.pathname !== '') || url.search || url.hash) {
      problems.push(`${where} must name a host only: a credential is for the whole host`);
      return;
    }
    const host = url.host.toLowerCase();
    if (Object.hasOwn(value, host)) {
      problems.push(`${where} names ${host} again: one credential a host`);
      return;
    }
    try {
      value[host] = {
        username: decodeURIComponent(url.username),
        password: decodeURIComponent(url.password),
        protocol: url.protocol,
      };
    } catch {
      problems.push(`${where} has a malformed percent-encoding`);
    }
  });
  return { value, problems };
}
