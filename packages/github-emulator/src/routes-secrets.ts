/**
 * Actions secrets, wherever they live: a repository's and an environment's are the same five operations on a holder
 * of secrets with its own libsodium key pair (the public key to seal with; the private key only the runner uses).
 */
import sodium from 'libsodium-wrappers';
import { z } from 'zod';
import type { Emulation } from './context.ts';
import { error, invalid, paginate, parseBody, type Ctx, type Reply } from './http.ts';
import { bump } from './records.ts';
import { now, type Repo } from './store.ts';

/** A secret's name, upper-cased as GitHub stores it; `GITHUB_` is GitHub's own. */
export const SECRET_NAME = /^(?!GITHUB_)[A-Z_][A-Z0-9_]*$/;
const SECRET_REQUIRED = 'Invalid request.\n\n"encrypted_value" and "key_id" are required.';
const putSecret = z.object({
  encrypted_value: z.string({ error: SECRET_REQUIRED }),
  key_id: z.string({ error: SECRET_REQUIRED }),
});

/** What holds secrets: a repository or one of its environments. */
export type SecretHolder = Pick<Repo, 'secrets' | 'keyPair'>;

const perm = (level: 'read' | 'write') => ({ permission: { area: 'secrets' as const, level } });

/**
 * The secret routes under `base` (e.g. `/repos/{owner}/{repo}/actions`), on the holder `holderOf` finds for a request
 * (or the reply that says why there is none). `keyOf` names the key in the refusal of a bad sealed box.
 */
export function registerSecretRoutes(
  env: Emulation,
  base: string,
  holderOf: (ctx: Ctx) => SecretHolder | Reply,
  keyOf: 'repository' | 'environment',
): void {
  const { store, router, records } = env;
  const isReply = (x: SecretHolder | Reply): x is Reply => !('keyPair' in x);

  router.add(
    'GET',
    `${base}/secrets/public-key`,
    (ctx) => {
      const h = holderOf(ctx);
      return isReply(h) ? h : { status: 200, body: { key_id: h.keyPair.keyId, key: h.keyPair.publicKey } };
    },
    perm('read'),
  );

  router.add(
    'GET',
    `${base}/secrets`,
    (ctx) => {
      const h = holderOf(ctx);
      if (isReply(h)) return h;
      const all = Object.entries(h.secrets)
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([name, s]) => ({ name, created_at: s.createdAt, updated_at: s.updatedAt }));
      const page = paginate(all, ctx, env.api());
      return { status: 200, body: { total_count: all.length, secrets: page.items }, headers: page.headers };
    },
    perm('read'),
  );

  router.add(
    'GET',
    `${base}/secrets/{secret_name}`,
    (ctx) => {
      const h = holderOf(ctx);
      if (isReply(h)) return h;
      const name = ctx.params.secret_name!.toUpperCase();
      const s = h.secrets[name];
      if (!s) return error(404, 'Not Found');
      return { status: 200, body: { name, created_at: s.createdAt, updated_at: s.updatedAt } };
    },
    perm('read'),
  );

  router.add(
    'PUT',
    `${base}/secrets/{secret_name}`,
    (ctx) => {
      const h = holderOf(ctx);
      if (isReply(h)) return h;
      // GitHub stores secret names upper-cased.
      const name = ctx.params.secret_name!.toUpperCase();
      if (!SECRET_NAME.test(name)) {
        return invalid(
          'Secret names can only contain alphanumeric characters ([a-z], [A-Z], [0-9]) or underscores (_), and must not start with GITHUB_',
        );
      }
      const input = parseBody(putSecret, ctx.body);
      if (input.key_id !== h.keyPair.keyId) return invalid('Bad key_id');
      try {
        sodium.crypto_box_seal_open(
          sodium.from_base64(input.encrypted_value, sodium.base64_variants.ORIGINAL),
          sodium.from_base64(h.keyPair.publicKey, sodium.base64_variants.ORIGINAL),
          sodium.from_base64(h.keyPair.privateKey, sodium.base64_variants.ORIGINAL),
        );
      } catch {
        return invalid(`encrypted_value is not a valid sealed box for this ${keyOf} key`);
      }
      const existing = h.secrets[name];
      h.secrets[name] = { encrypted: input.encrypted_value, createdAt: existing?.createdAt ?? now(), updatedAt: now() };
      bump(records.secretWrites, `${ctx.repo!.owner}/${ctx.repo!.name}`);
      store.save();
      return existing ? { status: 204 } : { status: 201, body: {} };
    },
    perm('write'),
  );

  router.add(
    'DELETE',
    `${base}/secrets/{secret_name}`,
    (ctx) => {
      const h = holderOf(ctx);
      if (isReply(h)) return h;
      const name = ctx.params.secret_name!.toUpperCase();
      if (!h.secrets[name]) return error(404, 'Not Found');
      delete h.secrets[name];
      store.save();
      return { status: 204 };
    },
    perm('write'),
  );
}
