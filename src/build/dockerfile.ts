/**
 * What the build engine reads of a Dockerfile before buildah does: which images it builds FROM (pulled ahead, with
 * network, so the build itself can run without), and checks on the manifest's hostile paths and build args.
 */
import { posix } from 'node:path';

/** A path from the manifest, relative, normalized, inside its base; undefined when it leaves it or is absolute. */
export function insidePath(path: string): string | undefined {
  if (path.includes('\0') || path.startsWith('/') || /^[a-zA-Z]:/.test(path)) return undefined;
  const norm = posix.normalize(path.replace(/\\/g, '/'));
  if (norm === '..' || norm.startsWith('../')) return undefined;
  return norm === '' ? '.' : norm.replace(/\/+$/, '') || '.';
}

const ARG_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;

/** Problems with build args (names only in messages: values may be anything, passed as one argv element each). */
export function buildArgProblems(args: Record<string, string>): string[] {
  const problems: string[] = [];
  for (const [name, value] of Object.entries(args)) {
    if (!ARG_NAME.test(name)) problems.push(`build arg name "${name.slice(0, 64)}" is not a valid ARG name`);
    if (typeof value !== 'string') problems.push(`build arg ${name} must be a string`);
    else if (value.includes('\0')) problems.push(`build arg ${name} contains a NUL byte`);
  }
  return problems;
}

/** Joins continuation lines and drops comments: one logical instruction per entry. */
function instructions(text: string): string[] {
  const out: string[] = [];
  let current = '';
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trimEnd();
    if (!current && /^\s*#/.test(line)) continue;
    if (line.endsWith('\\')) {
      current += line.slice(0, -1) + ' ';
      continue;
    }
    current += line;
    if (current.trim()) out.push(current.trim());
    current = '';
  }
  if (current.trim()) out.push(current.trim());
  return out;
}

function substitute(value: string, vars: Record<string, string>): string {
  return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (_m, a, def, b) => {
    const name = (a ?? b) as string;
    return vars[name] ?? (def as string | undefined) ?? '';
  });
}

/**
 * The images a Dockerfile pulls: every `FROM` that is not an earlier stage or `scratch`, and every `COPY --from=`
 * naming an image, with ARGs before the first FROM (and the build args) substituted.
 */
export function baseImages(text: string, buildArgs: Record<string, string>): string[] {
  const globals: Record<string, string> = {};
  const stages = new Set<string>();
  const images: string[] = [];
  const add = (ref: string) => {
    const r = ref.trim();
    if (!r || r === 'scratch' || stages.has(r.toLowerCase()) || /^\d+$/.test(r) || images.includes(r)) return;
    images.push(r);
  };
  let seenFrom = false;
  for (const inst of instructions(text)) {
    const [keyword = '', ...rest] = inst.split(/\s+/);
    const word = keyword.toUpperCase();
    if (word === 'ARG' && !seenFrom) {
      for (const decl of rest) {
        const eq = decl.indexOf('=');
        const name = eq === -1 ? decl : decl.slice(0, eq);
        const value = Object.hasOwn(buildArgs, name) ? buildArgs[name]! : eq === -1 ? '' : decl.slice(eq + 1);
        globals[name] = value.replace(/^"(.*)"$/, '$1');
      }
    } else if (word === 'FROM') {
      seenFrom = true;
      const words = rest.filter((w) => !w.startsWith('--'));
      const ref = substitute(words[0] ?? '', globals);
      add(ref);
      if (words[1]?.toUpperCase() === 'AS' && words[2]) stages.add(words[2].toLowerCase());
    } else if (word === 'COPY' || word === 'ADD') {
      for (const flag of rest) {
        const m = /^--from=(.+)$/.exec(flag);
        if (m) add(substitute(m[1]!, globals));
      }
    }
  }
  return images;
}
