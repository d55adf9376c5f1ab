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

/** An entry file as the GitLab backend writes into a project with a job of its own (src/ci/gitlab/pipeline-file.ts). */
export function backendEntryFile(): string {
  return `# the user's own pipeline
spec:
  inputs:
    flui_app: { description: "Set by Flui", default: "" }
    flui_deploy_id: { description: "Set by Flui", default: "" }
    flui_image_tag: { description: "Set by Flui", default: "" }
    flui_run_name: { description: "Set by Flui", default: "" }
---
stages: [build, test]
unit-tests:
  stage: test
  script:
    - echo "the user's tests"
include:
  - local: .flui/acme.web.gitlab-ci.yml
    inputs:
      app: $[[ inputs.flui_app ]]
      deploy_id: $[[ inputs.flui_deploy_id ]]
      image_tag: $[[ inputs.flui_image_tag ]]
      run_name: $[[ inputs.flui_run_name ]]
`;
}

/** The app's job file as the GitLab backend renders it (static push credential, base64 in a masked variable). */
export function backendJobFile(registry: string): string {
  return `# Managed by Flui for the app acme.web
spec:
  inputs:
    app: { description: "app", default: "", regex: "^([a-z0-9][-a-z0-9.]{0,126})?$" }
    deploy_id: { description: "deploy", default: "", regex: "^([a-z0-9][-a-z0-9.]{0,200}(/[0-9]{1,6})?)?$" }
    image_tag: { description: "tag", default: "", regex: "^([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?$" }
    run_name: { description: "name", default: "", regex: "^(flui [a-z0-9][-a-z0-9.]{0,200}(/[0-9]{1,6})?)?$" }
---
variables:
  FLUI_PIPELINE_NAME: "$[[ inputs.run_name ]]"
workflow:
  name: "$FLUI_PIPELINE_NAME"
flui-build-acme.web:
  stage: build
  image:
    name: "quay.io/buildah/stable@sha256:0000000000000000000000000000000000000000000000000000000000000000"
    entrypoint: [""]
  rules:
    - if: "$CI_PIPELINE_SOURCE == \\"api\\" && \\"$[[ inputs.app ]]\\" == \\"acme.web\\""
  interruptible: false
  timeout: "30m"
  variables:
    STORAGE_DRIVER: "vfs"
    BUILDAH_ISOLATION: "chroot"
    FLUI_REGISTRY: "${registry}"
    FLUI_IMAGE: "${registry}/acme/web"
    FLUI_IMAGE_TAG: "$[[ inputs.image_tag ]]"
    FLUI_CONTEXT: "."
    FLUI_DOCKERFILE: "Dockerfile"
    FLUI_BUILD_ARG_GREETING: "costs $$5"
  script:
    - printf '%s' "$FLUI_REGISTRY_PASSWORD_ACME_WEB" | base64 -d | buildah login --username "$FLUI_REGISTRY_USERNAME_ACME_WEB" --password-stdin "$FLUI_REGISTRY"
    - buildah bud --layers --build-arg GREETING="$FLUI_BUILD_ARG_GREETING" -f "$FLUI_DOCKERFILE" -t "$FLUI_IMAGE:$FLUI_IMAGE_TAG" "$FLUI_CONTEXT"
    - buildah push --digestfile /tmp/flui-image-digest "$FLUI_IMAGE:$FLUI_IMAGE_TAG" "docker://$FLUI_IMAGE:$FLUI_IMAGE_TAG"
    - buildah push "$FLUI_IMAGE:$FLUI_IMAGE_TAG" "docker://$FLUI_IMAGE:$CI_COMMIT_SHA"
    - echo "Pushed $FLUI_IMAGE:$FLUI_IMAGE_TAG as $(cat /tmp/flui-image-digest)"
`;
}
