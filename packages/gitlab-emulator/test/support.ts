/** Shared by the emulator's tests: gitbeaker as production builds it, a Flui-like `.gitlab-ci.yml`, polling. */
import { Gitlab } from '@gitbeaker/rest';
import type { GitLabEmulator } from '../src/index.ts';
import { pollUntil } from '../../../test/helpers/eventually.ts';

/** The production client pointed at the emulator, nothing else changed. */
export function gitbeakerFor(gitlab: GitLabEmulator, token: string): InstanceType<typeof Gitlab> {
  return new Gitlab({ host: gitlab.url, token });
}

/** Raw API call (for what gitbeaker does not expose): JSON in and out, the response's status and headers. */
export async function api(
  gitlab: GitLabEmulator,
  token: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: unknown; headers: Headers; text: string }> {
  const res = await fetch(`${gitlab.url}/api/v4${path}`, {
    method,
    headers: { 'private-token': token, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return { status: res.status, body: parsed, headers: res.headers, text };
}

/** A `.gitlab-ci.yml` shaped like the one Flui generates: a `deploy_id` input, a named pipeline, a buildah job. */
export function fluiCiFile(registry: string, image = 'acme/web'): string {
  return `spec:
  inputs:
    deploy_id:
      type: string
      description: the Flui deploy this pipeline builds
---
workflow:
  name: 'flui $[[ inputs.deploy_id ]]'
  rules:
    - if: $CI_PIPELINE_SOURCE == "api"
flui-build:
  stage: build
  image: quay.io/buildah/stable:v1.38
  variables:
    IMAGE: ${registry}/${image}:$[[ inputs.deploy_id ]]
  script:
    - echo "$FLUI_REGISTRY_PASSWORD" | buildah login --tls-verify=false -u "$FLUI_REGISTRY_USERNAME" --password-stdin ${registry}
    - buildah build --isolation chroot -f Dockerfile -t "$IMAGE" .
    - buildah push --tls-verify=false --digestfile /tmp/digest "$IMAGE" "docker://$IMAGE"
    - echo "flui-digest $(cat /tmp/digest)"
`;
}

export async function eventually<T>(
  probe: () => T | undefined | Promise<T | undefined>,
  what: string,
  timeoutMs = 20_000,
): Promise<T> {
  return pollUntil(probe, { what, timeoutMs, intervalMs: 25 });
}
