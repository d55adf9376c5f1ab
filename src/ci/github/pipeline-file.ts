/**
 * The GitHub Actions workflow Flui keeps in the user's repository. Deterministic: the same manifest renders the same
 * bytes, so an unchanged file is recognised by its blob SHA and never re-committed. Actions are pinned by major
 * version (the newest majors actionlint knows), the job gets read-only repository access, and nothing from the
 * manifest reaches a `run:` line or an expression unescaped.
 *
 * One file per app (`flui-build-<namespace>.<name>.yml`, dots because namespaces and names are DNS labels and never
 * contain one): several apps built from one repository, e.g. staging and production from one branch, never overwrite
 * each other's pipeline.
 */
import { stringify } from 'yaml';
import { ServiceError } from '../../errors.ts';
import type { Application } from '../../manifest/schema.ts';
import { imageHost } from '../../registry/reference.ts';
import { ciRunName } from '../../workflows/contract.ts';

/** The two Actions secrets the login step reads (the GitHub emulator's runner reads the same names from the file). */
export const REGISTRY_USERNAME_SECRET = 'FLUI_REGISTRY_USERNAME';
export const REGISTRY_PASSWORD_SECRET = 'FLUI_REGISTRY_PASSWORD';

export const ACTIONS = {
  checkout: 'actions/checkout@v6',
  setupBuildx: 'docker/setup-buildx-action@v4',
  login: 'docker/login-action@v4',
  buildPush: 'docker/build-push-action@v7',
} as const;

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

/** Literal text inside a workflow value: `${{` would otherwise start an expression (and could read secrets). */
function literal(value: string): string {
  return value.replaceAll('${{', "${{ '${{' }}");
}

function buildArgLines(app: Application): string {
  const entries = Object.entries(app.spec.source.buildArgs).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  for (const [name, value] of entries) {
    if (/[\r\n]/.test(value)) {
      throw new ServiceError({
        service: 'GitHub',
        kind: 'invalid',
        message: `build arg ${name} of ${appKey(app)} spans several lines, which docker/build-push-action cannot pass`,
        hint: 'put it on one line',
      });
    }
  }
  return entries.map(([name, value]) => literal(`${name}=${value}`)).join('\n');
}

export function renderPipelineFile(app: Application): string {
  const { source, image, deploy } = app.spec;
  const key = appKey(app);
  const dockerfile = source.context === '.' ? source.dockerfile : `${source.context}/${source.dockerfile}`;
  const buildArgs = buildArgLines(app);
  const tag = `${image.repository}:\${{ github.sha }}`;
  const workflow = {
    name: `flui build ${app.metadata.namespace}/${app.metadata.name}`,
    // The name Flui finds the run by (src/workflows/contract.ts), filled in by Actions from the dispatch input.
    'run-name': ciRunName('${{ inputs.deploy_id }}'),
    on: {
      workflow_dispatch: {
        inputs: {
          deploy_id: {
            description: 'Flui deploy id (names the run so Flui can find it)',
            required: true,
            type: 'string',
          },
        },
      },
    },
    permissions: { contents: 'read' },
    // Flui itself runs one deploy per app at a time; this keeps manual dispatches from racing it.
    concurrency: { group: `flui-build-${key}`, 'cancel-in-progress': false },
    jobs: {
      build: {
        'runs-on': 'ubuntu-latest',
        'timeout-minutes': deploy.buildTimeoutMinutes,
        outputs: { digest: '${{ steps.build.outputs.digest }}' },
        steps: [
          // No token left in .git/config, where a `COPY . .` could carry it into the image.
          { uses: ACTIONS.checkout, with: { 'persist-credentials': false } },
          { uses: ACTIONS.setupBuildx },
          {
            name: 'Log in to the registry',
            uses: ACTIONS.login,
            with: {
              registry: imageHost(image.repository),
              username: `\${{ secrets.${REGISTRY_USERNAME_SECRET} }}`,
              password: `\${{ secrets.${REGISTRY_PASSWORD_SECRET} }}`,
            },
          },
          {
            name: 'Build and push',
            id: 'build',
            uses: ACTIONS.buildPush,
            with: {
              context: source.context,
              file: dockerfile,
              push: true,
              tags: tag,
              ...(buildArgs ? { 'build-args': buildArgs } : {}),
              'cache-from': `type=gha,scope=flui-${key}`,
              'cache-to': `type=gha,mode=max,scope=flui-${key}`,
            },
          },
          {
            name: 'Report the digest',
            env: { IMAGE: tag, DIGEST: '${{ steps.build.outputs.digest }}' },
            run: 'echo "Pushed ${IMAGE} as ${DIGEST}" | tee -a "$GITHUB_STEP_SUMMARY"',
          },
        ],
      },
    },
  };
  const header =
    `# Managed by Flui for the app ${key}: Flui rewrites this file when it differs from the app's manifest,\n` +
    `# so edit the manifest instead. Flui dispatches it with a deploy id and deploys the pushed image by digest.\n`;
  return header + stringify(workflow, { lineWidth: 0, aliasDuplicateObjects: false });
}
