/**
 * Git tags, lightweight and annotated, as far as resolving an action's release to its commit needs them (what
 * `npm run pins:refresh` does): list refs by prefix, create and read annotated tag objects. Tag refs themselves are
 * created and read with the other refs (routes-repos.ts).
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { Emulation } from './context.ts';
import { error, invalid, parseBody } from './http.ts';
import { gitRef, tagRef } from './routes-repos.ts';
import { now, type Repo, type TagObject } from './store.ts';

const bodies = {
  createTag: z.object({
    tag: z.string({ error: 'Invalid request.\n\n"tag" wasn\'t supplied.' }).min(1),
    message: z.string({ error: 'Invalid request.\n\n"message" wasn\'t supplied.' }),
    object: z.string({ error: 'Invalid request.\n\n"object" wasn\'t supplied.' }),
    type: z.enum(['commit', 'tree', 'blob', 'tag'], { error: 'Invalid request.\n\n"type" is not a valid type.' }),
    tagger: z.object({ name: z.string(), email: z.string(), date: z.string().optional() }).optional(),
  }),
};

function tagObject(api: string, repo: Repo, sha: string, t: TagObject) {
  const full = `${repo.owner}/${repo.name}`;
  const kind = t.object.type === 'tag' ? 'tags' : 'commits';
  return {
    node_id: Buffer.from(`Tag:${full}:${sha}`).toString('base64'),
    tag: t.tag,
    sha,
    url: `${api}/repos/${full}/git/tags/${sha}`,
    message: t.message,
    tagger: t.tagger,
    object: { ...t.object, url: `${api}/repos/${full}/git/${kind}/${t.object.sha}` },
    verification: { verified: false, reason: 'unsigned', payload: null, signature: null, verified_at: null },
  };
}

export function registerTagRoutes(env: Emulation): void {
  const { store, router } = env;
  const read = { permission: { area: 'contents' as const, level: 'read' as const } };
  const write = { permission: { area: 'contents' as const, level: 'write' as const } };

  router.add(
    'GET',
    '/repos/{owner}/{repo}/git/matching-refs/{ref}',
    ({ repo, params }) => {
      const r = repo!;
      const prefix = params.ref!;
      const refs = [
        ...Object.entries(r.branches).map(([branch, sha]) => gitRef(env.api(), r, branch, sha)),
        ...Object.entries(r.tags ?? {}).map(([tag, sha]) => tagRef(env.api(), r, tag, sha)),
      ].filter((ref) => ref.ref.startsWith(`refs/${prefix}`));
      return { status: 200, body: refs.sort((a, b) => (a.ref < b.ref ? -1 : 1)) };
    },
    read,
  );

  router.add(
    'POST',
    '/repos/{owner}/{repo}/git/tags',
    ({ repo, body }) => {
      const r = repo!;
      const input = parseBody(bodies.createTag, body);
      const type = input.type === 'tag' ? 'tag' : 'commit';
      if (type === 'commit' ? !r.commits[input.object] : !r.tagObjects?.[input.object]) {
        return invalid('Object does not exist');
      }
      const t: TagObject = {
        tag: input.tag,
        message: input.message,
        object: { sha: input.object, type },
        tagger: {
          name: input.tagger?.name ?? 'emulator',
          email: input.tagger?.email ?? 'emulator@example.com',
          date: input.tagger?.date ?? now(),
        },
      };
      const sha = createHash('sha1').update(JSON.stringify(t)).digest('hex');
      (r.tagObjects ??= {})[sha] = t;
      store.save();
      return { status: 201, body: tagObject(env.api(), r, sha, t) };
    },
    write,
  );

  router.add(
    'GET',
    '/repos/{owner}/{repo}/git/tags/{tag_sha}',
    ({ repo, params }) => {
      const t = repo!.tagObjects?.[params.tag_sha!];
      return t ? { status: 200, body: tagObject(env.api(), repo!, params.tag_sha!, t) } : error(404, 'Not Found');
    },
    read,
  );
}
