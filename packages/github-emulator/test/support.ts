/** Shared by the emulator's tests: Octokit as production builds it, sealing secrets, a Flui-like workflow file. */
import { Octokit } from '@octokit/rest';
import sodium from 'libsodium-wrappers';
import type { GitHubEmulator } from '../src/index.ts';
import { pollUntil } from '../../../test/helpers/eventually.ts';

const quiet = { debug() {}, info() {}, warn() {}, error() {} };

/** Octokit with `baseUrl` pointing at the emulator, nothing else changed. */
export function octokitFor(github: GitHubEmulator, token: string): Octokit {
  return new Octokit({ auth: token, baseUrl: github.url, log: quiet });
}

/** What a client does with the repository's public key: a libsodium sealed box, base64. */
export async function seal(publicKey: string, value: string): Promise<string> {
  await sodium.ready;
  return sodium.to_base64(
    sodium.crypto_box_seal(sodium.from_string(value), sodium.from_base64(publicKey, sodium.base64_variants.ORIGINAL)),
    sodium.base64_variants.ORIGINAL,
  );
}

/** A workflow shaped like the one Flui generates (src/ci/github/pipeline-file.ts), pushing to `registry`. */
export function fluiWorkflow(registry: string, repository = 'acme/web', extra = ''): string {
  return `name: flui build
run-name: flui \${{ inputs.deploy_id }}
on:
  workflow_dispatch:
    inputs:
      deploy_id: { description: deploy, required: true, type: string }${extra}
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v6
        with: { persist-credentials: false }
      - uses: docker/setup-buildx-action@v4
      - name: Log in to the registry
        uses: docker/login-action@v4
        with:
          registry: ${registry}
          username: \${{ secrets.FLUI_REGISTRY_USERNAME }}
          password: \${{ secrets.FLUI_REGISTRY_PASSWORD }}
      - name: Build and push
        id: build
        uses: docker/build-push-action@v7
        with:
          context: .
          file: Dockerfile
          push: true
          tags: ${registry}/${repository}:\${{ github.sha }}
      - name: Report the digest
        run: echo "digest \${{ steps.build.outputs.digest }}"
`;
}

/** Stores the registry credential as Flui does: two sealed Actions secrets. */
export async function storeCredential(
  gh: Octokit,
  owner: string,
  repo: string,
  credential: { username: string; password: string },
): Promise<void> {
  const { data: key } = await gh.rest.actions.getRepoPublicKey({ owner, repo });
  for (const [name, value] of [
    ['FLUI_REGISTRY_USERNAME', credential.username],
    ['FLUI_REGISTRY_PASSWORD', credential.password],
  ] as const) {
    await gh.rest.actions.createOrUpdateRepoSecret({
      owner,
      repo,
      secret_name: name,
      encrypted_value: await seal(key.key, value),
      key_id: key.key_id,
    });
  }
}

/** Polls `probe` until it returns a value (not undefined); fails after `timeoutMs` naming `what`. */
export async function eventually<T>(
  probe: () => Promise<T | undefined> | T | undefined,
  what: string,
  timeoutMs = 20_000,
): Promise<T> {
  return pollUntil(probe, { what, timeoutMs, intervalMs: 25 });
}

/** The HTTP status of a rejected Octokit request (or of a response). */
export async function statusOf(p: Promise<unknown>): Promise<number> {
  try {
    const res = (await p) as { status: number };
    return res.status;
  } catch (err) {
    const status = (err as { status?: number }).status;
    if (status === undefined) throw err;
    return status;
  }
}

/** The error body of a rejected Octokit request. */
export async function errorOf(
  p: Promise<unknown>,
): Promise<{ status: number; message: string; body: Record<string, unknown>; headers: Record<string, string> }> {
  try {
    await p;
  } catch (err) {
    const e = err as { status: number; response?: { data: Record<string, unknown>; headers: Record<string, string> } };
    const body = e.response?.data ?? {};
    return { status: e.status, message: String(body.message), body, headers: e.response?.headers ?? {} };
  }
  throw new Error('expected the request to fail');
}
