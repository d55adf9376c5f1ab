/**
 * The GitHub Actions workflow Flui keeps in the user's repository. Deterministic: the same manifest renders the same
 * bytes, so an unchanged file is recognised by its blob SHA and never re-committed. Actions are pinned by version.
 */
import { stringify } from 'yaml';
import type { Application } from '../../manifest/schema.ts';
import { imageHost } from '../../registry/reference.ts';

export const REGISTRY_USERNAME_SECRET = 'FLUI_REGISTRY_USERNAME';
export const REGISTRY_PASSWORD_SECRET = 'FLUI_REGISTRY_PASSWORD';

export const ACTIONS = {
  checkout: 'actions/checkout@v4',
  setupBuildx: 'docker/setup-buildx-action@v3',
  login: 'docker/login-action@v3',
  buildPush: 'docker/build-push-action@v6',
} as const;

/** One file per app, so several apps built from one repository never overwrite each other's pipeline. */
export function pipelinePath(app: Application): string {
  return `.github/workflows/flui-build-${app.metadata.name}.yml`;
}

export function renderPipelineFile(app: Application): string {
  const { source, image, deploy } = app.spec;
  const dockerfile = source.context === '.' ? source.dockerfile : `${source.context}/${source.dockerfile}`;
  const buildArgs = Object.entries(source.buildArgs)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}=${v}`)
    .join('\n');
  const workflow = {
    name: `flui build ${app.metadata.name}`,
    'run-name': 'flui ${{ inputs.deploy_id }}',
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
    concurrency: { group: `flui-build-${app.metadata.name}`, 'cancel-in-progress': false },
    jobs: {
      build: {
        'runs-on': 'ubuntu-latest',
        'timeout-minutes': deploy.buildTimeoutMinutes,
        outputs: { digest: '${{ steps.build.outputs.digest }}' },
        steps: [
          { uses: ACTIONS.checkout },
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
              tags: `${image.repository}:\${{ github.sha }}`,
              ...(buildArgs ? { 'build-args': buildArgs } : {}),
              'cache-from': `type=gha,scope=flui-${app.metadata.name}`,
              'cache-to': `type=gha,mode=max,scope=flui-${app.metadata.name}`,
            },
          },
          {
            name: 'Report the digest',
            env: { IMAGE: `${image.repository}:\${{ github.sha }}`, DIGEST: '${{ steps.build.outputs.digest }}' },
            run: 'echo "Pushed ${IMAGE} as ${DIGEST}" | tee -a "$GITHUB_STEP_SUMMARY"',
          },
        ],
      },
    },
  };
  const header =
    `# Managed by Flui for the app "${app.metadata.name}": it is rewritten on each deploy when it differs.\n` +
    `# Flui dispatches it with a deploy id and deploys the pushed image by digest.\n`;
  return header + stringify(workflow, { lineWidth: 0, aliasDuplicateObjects: false });
}
