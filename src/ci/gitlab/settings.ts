/**
 * GitLab CI settings of the worker (FLUI_CI=gitlab), read by src/config.ts in one block. Secrets (the token, the
 * webhook secret) stay in the worker's configuration: activities read them from here, never from workflow inputs.
 *
 *   GITLAB_URL                 the instance, e.g. https://gitlab.com or https://gitlab.example.com (the API is /api/v4)
 *   GITLAB_TOKEN               a project, group or personal access token with the `api` scope (the Commits, Variables
 *                              and Pipelines APIs need it; `read_api` cannot write) and at least the Maintainer role
 *                              (CI/CD variables need Maintainer)
 *   GITLAB_WEBHOOK_SECRET      the Pipeline webhook's secret token, sent back by GitLab as `X-Gitlab-Token`
 *   GITLAB_WEBHOOK_SIGNING_TOKEN  the webhook's signing token (`whsec_<base64>`, newer GitLab): deliveries must then
 *                              be signed with it (webhook.ts); with GITLAB_WEBHOOK_SECRET too, both are required
 *   GITLAB_REGISTRY_HOST       the instance's container registry (`CI_REGISTRY`, registry.gitlab.com on gitlab.com):
 *                              images there are pushed with the job's own CI_REGISTRY_USER/CI_REGISTRY_PASSWORD
 *   FLUI_GITLAB_BUILDER_IMAGE  the buildah image the build job runs in, pinned by digest (with skopeo too for a
 *                              `minted-token` registry: the job pushes with skopeo's --dest-registry-token)
 */
import { signingKey } from './webhook.ts';

/** quay.io/buildah/stable, the amd64 manifest of a published release, by digest (refresh: `skopeo inspect`). */
export const DEFAULT_BUILDER_IMAGE =
  'quay.io/buildah/stable@sha256:8570703f0feb3f39d180e932a2ec8e350ee860790062a5ecd5a3b3ac51f337c5';

export interface GitLabSettings {
  /** Base URL of the instance, without a trailing slash (the API lives under `${url}/api/v4`). */
  url: string;
  token?: string;
  webhookSecret?: string;
  /** GITLAB_WEBHOOK_SIGNING_TOKEN, `whsec_<base64>` (checked here: a malformed one is a configuration problem). */
  webhookSigningToken?: string;
  /** The instance's container registry host (`CI_REGISTRY`), when it has one. */
  registryHost?: string;
  builderImage: string;
}

const PINNED = /^[a-z0-9.-]+(:[0-9]+)?\/[a-z0-9._/-]+(:[A-Za-z0-9_.-]+)?@sha256:[a-f0-9]{64}$/;
const HOST = /^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?$/;

/** Reads the GitLab variables; `problems` are sentences naming the variable (never echoing a secret). */
export function parseGitLabSettings(env: NodeJS.ProcessEnv): { value: GitLabSettings; problems: string[] } {
  const problems: string[] = [];
  const get = (name: string) => (env[name] === undefined || env[name] === '' ? undefined : env[name]!.trim());
  let url = get('GITLAB_URL') ?? 'https://gitlab.com';
  if (!/^https?:\/\/[^\s/]/.test(url) || !URL.canParse(url)) {
    problems.push(`GITLAB_URL must be an http(s) URL such as https://gitlab.example.com, not ${JSON.stringify(url)}`);
    url = 'https://gitlab.com';
  }
  url = url.replace(/\/+$/, '').replace(/\/api\/v4$/, '');
  let registryHost = get('GITLAB_REGISTRY_HOST')?.toLowerCase();
  if (registryHost === undefined && new URL(url).host === 'gitlab.com') registryHost = 'registry.gitlab.com';
  if (registryHost !== undefined && !HOST.test(registryHost)) {
    problems.push(
      `GITLAB_REGISTRY_HOST must be a registry host (host or host:port), not ${JSON.stringify(registryHost)}`,
    );
    registryHost = undefined;
  }
  let builderImage = get('FLUI_GITLAB_BUILDER_IMAGE') ?? DEFAULT_BUILDER_IMAGE;
  if (!PINNED.test(builderImage)) {
    problems.push(
      `FLUI_GITLAB_BUILDER_IMAGE must be an image pinned by digest (host/path@sha256:<64 hex>), not ${JSON.stringify(builderImage)}`,
    );
    builderImage = DEFAULT_BUILDER_IMAGE;
  }
  const token = get('GITLAB_TOKEN');
  if (token !== undefined && !/^[\x21-\x7e]+$/.test(token)) {
    problems.push('GITLAB_TOKEN must be one word of printable ASCII (as GitLab issues them)');
  }
  const webhookSecret = get('GITLAB_WEBHOOK_SECRET');
  let webhookSigningToken = get('GITLAB_WEBHOOK_SIGNING_TOKEN');
  if (webhookSigningToken !== undefined && !signingKey(webhookSigningToken)) {
    problems.push(
      'GITLAB_WEBHOOK_SIGNING_TOKEN must be the signing token GitLab generated, whsec_ followed by base64 (of 32 bytes)',
    );
    webhookSigningToken = undefined;
  }
  return {
    value: {
      url,
      ...(token ? { token } : {}),
      ...(webhookSecret ? { webhookSecret } : {}),
      ...(webhookSigningToken ? { webhookSigningToken } : {}),
      ...(registryHost ? { registryHost } : {}),
      builderImage,
    },
    problems,
  };
}
