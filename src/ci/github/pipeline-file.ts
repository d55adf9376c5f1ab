/**
 * The GitHub Actions workflow Flui keeps in the user's repository. Deterministic: the same manifest and settings render
 * the same bytes, so an unchanged file is recognised by its blob SHA and never re-committed.
 *
 * What it guarantees on its own, whatever the manifest holds (the manifest is also validated when it is parsed):
 * - every YAML parser reads the same document from it (./workflow-yaml.ts: nothing a value holds can end a line or
 *   change a type), and nothing from the manifest reaches a `run:` line or an expression unescaped;
 * - third-party actions are pinned by commit SHA (./action-pins.ts), the workflow has no permissions and the job only
 *   what its push method needs, checkout leaves no token behind;
 * - the push credential is the least the registry allows (src/registry/push-access.ts): the job's own token, OIDC,
 *   a per-deploy token for this app's repository only, or (opted in) a static password; its secrets are this app's,
 *   so two apps built from one repository never overwrite each other's; and with a GitHub Environment configured
 *   the job runs in it, so its protection rules guard the credential;
 * - the image is pushed under the commit SHA and under a tag naming this deploy (`inputs.image_tag`), which Flui
 *   resolves and rolls out by digest: exactly what this run pushed.
 *
 * One file per app (`flui-build-<namespace>.<name>.yml`, dots because namespaces and names are DNS labels and never
 * contain one): several apps built from one repository, e.g. staging and production from one branch, never overwrite
 * each other's pipeline.
 */
import { createHash } from 'node:crypto';
import { ServiceError } from '../../errors.ts';
import type { Application } from '../../manifest/schema.ts';
import { DNS_LABEL, IMAGE_REPOSITORY } from '../../manifest/names.ts';
import type { PushAccess } from '../../registry/push-access.ts';
import { ciRunName } from '../../workflows/contract.ts';
import { ACTION_PINS, usesRef, type PinnedAction } from './action-pins.ts';
import { Commented, UnwritableStringError, writeWorkflowYaml, type YamlValue } from './workflow-yaml.ts';

/** What the file depends on besides the manifest: worker settings. */
export interface PipelineOptions {
  push: PushAccess;
  /** GitHub Environment the build job runs in (its secrets and protection rules), when configured. */
  environment?: string;
}

/** `<namespace>.<name>`: the app's identity in Flui, unambiguous because DNS labels contain no dots. */
export function appKey(app: Application): string {
  return `${app.metadata.namespace}.${app.metadata.name}`;
}

/** The workflow file's name, which the Actions API also accepts as the workflow id. */
export function pipelineFileName(app: Application): string {
  return `flui-build-${appKey(app)}.yml`;
}

export function pipelinePath(app: Application): string {
  return `.github/workflows/${pipelineFileName(app)}`;
}

/**
 * This app's suffix for secret and variable names, which GitHub keeps per repository (or environment): the app key
 * upper-cased with `_` for `.` and `-` (readable, at most 40 characters), then 8 hex digits of its SHA-256, since
 * `a-b.c` and `a.b-c` would otherwise read the same.
 */
export function appNameSuffix(app: Application): string {
  const key = appKey(app);
  const readable = key
    .toUpperCase()
    .replace(/[^A-Z0-9]/g, '_')
    .slice(0, 40);
  return `${readable}_${createHash('sha256').update(key).digest('hex').slice(0, 8).toUpperCase()}`;
}

/** The names of this app's push secrets and the variable that fingerprints them. */
export function pushSecretNames(app: Application) {
  const suffix = appNameSuffix(app);
  return {
    /** `static`: the registry username and password. */
    username: `FLUI_REGISTRY_USERNAME_${suffix}`,
    password: `FLUI_REGISTRY_PASSWORD_${suffix}`,
    /** `static`: fingerprint of the stored username and password (a variable, not a secret). */
    fingerprint: `FLUI_REGISTRY_FINGERPRINT_${suffix}`,
    /** `minted-token`: this deploy's registry token. */
    token: `FLUI_REGISTRY_TOKEN_${suffix}`,
  };
}

/** The dispatch inputs the file declares, which `trigger` passes. */
export const DISPATCH_INPUTS = { deployId: 'deploy_id', imageTag: 'image_tag' } as const;

/** Literal text inside a workflow value: `${{` would otherwise start an expression (and could read secrets). */
function literal(value: string): string {
  return value.replaceAll('${{', "${{ '${{' }}");
}

function invalid(app: Application, message: string, hint?: string): ServiceError {
  return new ServiceError({ service: 'GitHub', kind: 'invalid', message: `${appKey(app)}: ${message}`, hint });
}

/**
 * The `build-args` lines: `NAME=value`, CSV-quoted when the value holds a quote or a comma, because
 * docker/build-push-action reads the input as CSV (a field that starts with a quote would lose it); then every `${{`
 * made literal. The action splits lines and trims each, so a value spanning lines or ending in whitespace cannot pass
 * through it and is refused.
 */
export function buildArgLines(app: Application): string[] {
  const entries = Object.entries(app.spec.source.buildArgs).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return entries.map(([name, value]) => {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw invalid(app, `build arg name "${name}" is not a variable name`);
    if (/[\r\n]/.test(value)) {
      throw invalid(
        app,
        `build arg ${name} spans several lines, which docker/build-push-action cannot pass`,
        'put it on one line',
      );
    }
    if (value !== value.trimEnd()) {
      throw invalid(
        app,
        `build arg ${name} ends in whitespace, which docker/build-push-action would strip`,
        'remove the trailing whitespace',
      );
    }
    const line = `${name}=${value}`;
    return literal(/[",]/.test(value) ? `"${line.replaceAll('"', '""')}"` : line);
  });
}

function uses(action: PinnedAction): Commented {
  const pin = ACTION_PINS[action];
  return new Commented(usesRef(pin), pin.version);
}

const secret = (name: string) => `\${{ secrets.${name} }}`;

/** Steps that leave the job able to push to `push.registry`, and the permissions they need beyond `contents: read`. */
function loginSteps(
  app: Application,
  push: PushAccess,
): { steps: YamlValue[]; permissions: Record<string, YamlValue> } {
  const names = pushSecretNames(app);
  const registry = push.registry;
  switch (push.method) {
    case 'ci-job-token':
      throw invalid(app, `${registry} is pushed to with a GitLab job's token, which GitHub Actions does not have`);
    case 'github-token':
      return {
        permissions: { packages: new Commented('write', `push the image to ${registry} with the job's token`) },
        steps: [
          {
            name: `Log in to ${registry} with the job's token`,
            uses: uses('login'),
            with: { registry, username: '${{ github.actor }}', password: '${{ secrets.GITHUB_TOKEN }}' },
          },
        ],
      };
    case 'static':
      return {
        permissions: {},
        steps: [
          {
            name: `Log in to ${registry}`,
            uses: uses('login'),
            with: { registry, username: secret(names.username), password: secret(names.password) },
          },
        ],
      };
    case 'minted-token':
      return {
        permissions: {},
        steps: [
          {
            // docker and buildx send a config's `registrytoken` as the Bearer token itself (no token service).
            name: `Log in to ${registry} with this deploy's token`,
            env: { REGISTRY: registry, REGISTRY_TOKEN: secret(names.token) },
            run: [
              'umask 077',
              'config="${DOCKER_CONFIG:-$HOME/.docker}/config.json"',
              'mkdir -p "$(dirname "$config")"',
              '[ -s "$config" ] || echo "{}" >"$config"',
              `jq '.auths[env.REGISTRY] = {registrytoken: env.REGISTRY_TOKEN}' "$config" >"$config.new"`,
              'mv "$config.new" "$config"',
            ].join('\n'),
          },
        ],
      };
    case 'aws-oidc':
      return {
        permissions: {
          'id-token': new Commented('write', 'trade the OIDC token for short-lived registry credentials'),
        },
        steps: [
          {
            name: "Assume the push role with the job's OIDC token",
            uses: uses('awsCredentials'),
            with: { 'role-to-assume': push.roleArn, 'aws-region': push.region },
          },
          { name: `Log in to ${registry}`, uses: uses('ecrLogin'), with: { registries: push.accountId } },
        ],
      };
    case 'gcp-oidc':
      return {
        permissions: {
          'id-token': new Commented('write', 'trade the OIDC token for short-lived registry credentials'),
        },
        steps: [
          {
            name: "Get a Google access token with the job's OIDC token",
            id: 'gcp-auth',
            uses: uses('gcpAuth'),
            with: {
              workload_identity_provider: push.workloadIdentityProvider,
              service_account: push.serviceAccount,
              token_format: 'access_token',
              // No credentials file in the workspace, where a `COPY . .` would carry it into the image.
              create_credentials_file: false,
              export_environment_variables: false,
            },
          },
          {
            name: `Log in to ${registry}`,
            uses: uses('login'),
            with: { registry, username: 'oauth2accesstoken', password: '${{ steps.gcp-auth.outputs.access_token }}' },
          },
        ],
      };
    case 'azure-oidc':
      return {
        permissions: {
          'id-token': new Commented('write', 'trade the OIDC token for short-lived registry credentials'),
        },
        steps: [
          {
            name: "Sign in to Azure with the job's OIDC token",
            uses: uses('azureLogin'),
            with: { 'client-id': push.clientId, 'tenant-id': push.tenantId, 'subscription-id': push.subscriptionId },
          },
          {
            name: `Log in to ${registry}`,
            env: { REGISTRY_NAME: push.registryName },
            run: 'az acr login --name "$REGISTRY_NAME"',
          },
        ],
      };
  }
}

export function renderPipelineFile(app: Application, options: PipelineOptions): string {
  const { source, image, deploy } = app.spec;
  // Names become file names, secret names and comments: DNS labels only.
  if (!DNS_LABEL.test(app.metadata.namespace) || !DNS_LABEL.test(app.metadata.name)) {
    throw invalid(app, 'namespace and name must be DNS labels');
  }
  const key = appKey(app);
  // The tags input is a list: a repository that is not one could add tags of its own.
  if (!IMAGE_REPOSITORY.test(image.repository)) throw invalid(app, `"${image.repository}" is not an image repository`);
  const dockerfile = source.context === '.' ? source.dockerfile : `${source.context}/${source.dockerfile}`;
  const buildArgs = buildArgLines(app);
  const repository = literal(image.repository);
  const shaTag = `${repository}:\${{ github.sha }}`;
  const deployTag = `${repository}:\${{ inputs.${DISPATCH_INPUTS.imageTag} }}`;
  const login = loginSteps(app, options.push);
  const workflow = {
    name: literal(`flui build ${app.metadata.namespace}/${app.metadata.name}`),
    // The name Flui finds the run by (src/workflows/contract.ts), filled in by Actions from the dispatch input.
    'run-name': ciRunName(`\${{ inputs.${DISPATCH_INPUTS.deployId} }}`),
    on: {
      workflow_dispatch: {
        inputs: {
          [DISPATCH_INPUTS.deployId]: {
            description: 'Flui deploy id (names the run so Flui can find it)',
            required: true,
            type: 'string',
          },
          [DISPATCH_INPUTS.imageTag]: {
            description: 'Tag naming this deploy, under which the image is pushed too (Flui deploys what it names)',
            required: true,
            type: 'string',
          },
        },
      },
    },
    // Nothing at the workflow level; the job asks for what it needs.
    permissions: {},
    // Flui itself runs one deploy per app at a time; this keeps manual dispatches from racing it.
    concurrency: { group: literal(`flui-build-${key}`), 'cancel-in-progress': false },
    jobs: {
      build: {
        name: literal(`Build and push ${app.metadata.namespace}/${app.metadata.name}`),
        'runs-on': 'ubuntu-latest',
        'timeout-minutes': deploy.buildTimeoutMinutes,
        ...(options.environment ? { environment: literal(options.environment) } : {}),
        permissions: { contents: new Commented('read', 'check out the code to build'), ...login.permissions },
        outputs: { digest: '${{ steps.build.outputs.digest }}' },
        steps: [
          // No token left in .git/config, where a `COPY . .` could carry it into the image.
          { uses: uses('checkout'), with: { 'persist-credentials': false } },
          { uses: uses('setupBuildx') },
          ...login.steps,
          {
            name: 'Build and push',
            id: 'build',
            uses: uses('buildPush'),
            with: {
              context: literal(source.context),
              file: literal(dockerfile),
              push: true,
              tags: `${shaTag}\n${deployTag}`,
              ...(buildArgs.length ? { 'build-args': buildArgs.join('\n') } : {}),
              'cache-from': literal(`type=gha,scope=flui-${key}`),
              'cache-to': literal(`type=gha,mode=max,scope=flui-${key}`),
            },
          },
          {
            name: 'Report the digest',
            env: { IMAGE: deployTag, DIGEST: '${{ steps.build.outputs.digest }}' },
            run: 'echo "Pushed ${IMAGE} as ${DIGEST}" | tee -a "$GITHUB_STEP_SUMMARY"',
          },
        ],
      },
    },
  };
  const header = [
    `Managed by Flui for the app ${key}: Flui rewrites this file when it differs from the app's manifest,`,
    'so edit the manifest instead. Flui dispatches it with a deploy id and deploys the pushed image by digest.',
  ];
  try {
    return writeWorkflowYaml(workflow, header);
  } catch (err) {
    if (err instanceof UnwritableStringError) {
      throw invalid(app, `a value of the manifest cannot be written to a workflow file (${err.message})`);
    }
    throw err;
  }
}
