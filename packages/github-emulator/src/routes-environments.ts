/**
 * GitHub Environments of a repository, as far as a build needs them: an environment itself (get, create or update)
 * and its Actions secrets, sealed with the environment's own libsodium key. A job that names an environment reads its
 * secrets before the repository's (src/runner.ts), and GitHub creates an environment a job names on its first run.
 */
import sodium from 'libsodium-wrappers';
import { z } from 'zod';
import type { Emulation } from './context.ts';
import { error, invalid, paginate, parseBody, type Ctx, type Reply } from './http.ts';
import { bump } from './records.ts';
import { now, type Environment, type Repo } from './store.ts';

/** A secret's name, upper-cased as GitHub stores it; `GITHUB_` is GitHub's own. */
const NAME = /^(?!GITHUB_)[A-Z_][A-Z0-9_]*$/;
const SECRET_REQUIRED = 'Invalid request.\n\n"encrypted_value" and "key_id" are required.';

const bodies = {
  putSecret: z.object({
    encrypted_value: z.string({ error: SECRET_REQUIRED }),
    key_id: z.string({ error: SECRET_REQUIRED }),
  }),
  // Protection rules are not emulated: accepted, not enforced.
  putEnvironment: z.object({}).passthrough(),
};

function shape(env: Emulation, repo: Repo, e: Environment) {
  const url = `${env.api()}/repos/${repo.owner}/${repo.name}/environments/${encodeURIComponent(e.name)}`;
  return {
    id: e.id,
    node_id: Buffer.from(`Environment:${e.id}`).toString('base64'),
    name: e.name,
    url,
    html_url: `${env.api()}/_html/${repo.owner}/${repo.name}/deployments/activity_log?environments_filter=${encodeURIComponent(e.name)}`,
    created_at: e.createdAt,
    updated_at: e.updatedAt,
    protection_rules: [],
    deployment_branch_policy: null,
  };
}

export function registerEnvironmentRoutes(env: Emulation): void {
  const { store, router, records } = env;
  const perm = (area: 'secrets', level: 'read' | 'write') => ({ permission: { area, level } });
  /** The environment the path names, or GitHub's 404. */
  const named = (ctx: Ctx): Environment | Reply =>
    store.environment(ctx.repo!, ctx.params.environment_name!, false) ?? error(404, 'Not Found');
  const isReply = (x: Environment | Reply): x is Reply => 'status' in x && !('keyPair' in x);

  router.add('GET', '/repos/{owner}/{repo}/environments/{environment_name}', (ctx) => {
    const e = named(ctx);
    return isReply(e) ? e : { status: 200, body: shape(env, ctx.repo!, e) };
  });

  // GitHub asks for administration rights here; the emulator's tokens have no such area, so any token may.
  router.add('PUT', '/repos/{owner}/{repo}/environments/{environment_name}', (ctx) => {
    parseBody(bodies.putEnvironment, ctx.body);
    const e = store.environment(ctx.repo!, ctx.params.environment_name!)!;
    e.updatedAt = now();
    store.save();
    return { status: 200, body: shape(env, ctx.repo!, e) };
  });

  router.add(
    'GET',
    '/repos/{owner}/{repo}/environments/{environment_name}/secrets/public-key',
    (ctx) => {
      const e = named(ctx);
      return isReply(e) ? e : { status: 200, body: { key_id: e.keyPair.keyId, key: e.keyPair.publicKey } };
    },
    perm('secrets', 'read'),
  );

  router.add(
    'GET',
    '/repos/{owner}/{repo}/environments/{environment_name}/secrets',
    (ctx) => {
      const e = named(ctx);
      if (isReply(e)) return e;
      const all = Object.entries(e.secrets)
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([name, s]) => ({ name, created_at: s.createdAt, updated_at: s.updatedAt }));
      const page = paginate(all, ctx, env.api());
      return { status: 200, body: { total_count: all.length, secrets: page.items }, headers: page.headers };
    },
    perm('secrets', 'read'),
  );

  router.add(
    'GET',
    '/repos/{owner}/{repo}/environments/{environment_name}/secrets/{secret_name}',
    (ctx) => {
      const e = named(ctx);
      if (isReply(e)) return e;
      const name = ctx.params.secret_name!.toUpperCase();
      const s = e.secrets[name];
      if (!s) return error(404, 'Not Found');
      return { status: 200, body: { name, created_at: s.createdAt, updated_at: s.updatedAt } };
    },
    perm('secrets', 'read'),
  );

  router.add(
    'PUT',
    '/repos/{owner}/{repo}/environments/{environment_name}/secrets/{secret_name}',
    (ctx) => {
      const e = named(ctx);
      if (isReply(e)) return e;
      const name = ctx.params.secret_name!.toUpperCase();
      if (!NAME.test(name)) {
        return invalid(
          'Secret names can only contain alphanumeric characters ([a-z], [A-Z], [0-9]) or underscores (_), and must not start with GITHUB_',
        );
      }
      const input = parseBody(bodies.putSecret, ctx.body);
      if (input.key_id !== e.keyPair.keyId) return invalid('Bad key_id');
      try {
        sodium.crypto_box_seal_open(
          sodium.from_base64(input.encrypted_value, sodium.base64_variants.ORIGINAL),
          sodium.from_base64(e.keyPair.publicKey, sodium.base64_variants.ORIGINAL),
          sodium.from_base64(e.keyPair.privateKey, sodium.base64_variants.ORIGINAL),
        );
      } catch {
        return invalid('encrypted_value is not a valid sealed box for this environment key');
      }
      const existing = e.secrets[name];
      e.secrets[name] = { encrypted: input.encrypted_value, createdAt: existing?.createdAt ?? now(), updatedAt: now() };
      bump(records.secretWrites, `${ctx.repo!.owner}/${ctx.repo!.name}`);
      store.save();
      return existing ? { status: 204 } : { status: 201, body: {} };
    },
    perm('secrets', 'write'),
  );

  router.add(
    'DELETE',
    '/repos/{owner}/{repo}/environments/{environment_name}/secrets/{secret_name}',
    (ctx) => {
      const e = named(ctx);
      if (isReply(e)) return e;
      const name = ctx.params.secret_name!.toUpperCase();
      if (!e.secrets[name]) return error(404, 'Not Found');
      delete e.secrets[name];
      store.save();
      return { status: 204 };
    },
    perm('secrets', 'write'),
  );
}
