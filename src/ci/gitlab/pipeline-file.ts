/**
 * The GitLab CI files Flui keeps in the user's project. Deterministic: the same manifest and settings render the same
 * bytes, so a current file is recognised by its content and never committed again.
 *
 * Who owns what. A project has one CI entry file (`ci_config_path`, `.gitlab-ci.yml` by default), and pipeline inputs
 * (`spec:inputs`) are declared in the header of the file a pipeline starts from (GitLab docs, "CI/CD inputs"). So:
 * - each app's build job lives in a file Flui owns and rewrites, `.flui/<namespace>.<name>.gitlab-ci.yml`, with inputs
 *   of its own (`app`, `deploy_id`, `image_tag`, `run_name`), included by the entry file;
 * - the entry file is the user's. When there is none, Flui creates one that only includes the apps' files. When there
 *   is one, Flui adds exactly two things, keeping everything else (comments included): four pipeline inputs in its
 *   header, all optional (`default: ''`), and one `include:` entry per app. Push, merge request and scheduled
 *   pipelines never set those inputs, so they read as empty strings and change nothing for the user's jobs.
 * - Flui's job runs only in a pipeline Flui started: its rule needs `CI_PIPELINE_SOURCE == "api"` and the app input to
 *   name this app. The pipeline is named by `workflow:name: $FLUI_PIPELINE_NAME`, a global variable holding the
 *   `run_name` input (`flui <run key>`), which is empty in every other pipeline: GitLab leaves a pipeline whose name
 *   expands to blank unnamed (gitlab-org/gitlab!105096). Included files are deep-merged into the entry file, which wins on conflicts, so an
 *   entry file that sets `workflow:name` itself is refused (Flui could not find its pipelines again).
 * - An entry file whose `stages:` lacks `build` gets `build` added first (an empty stage is skipped, and GitLab refuses
 *   a job whose stage is not declared).
 *
 * Strings. Every value from the manifest reaches the job only as a `variables:` value, double-quoted by the same
 * writer as the GitHub file (./../github/workflow-yaml.ts: nothing a value holds ends a line, GitLab's YAML 1.1
 * parser reads what a YAML 1.2 reader reads), with each `$` written `$$` (GitLab's escape for a literal `$` in a
 * variable, so no CI variable, a masked password included, is expanded into a build arg), and `$[[` refused (GitLab
 * interpolates inputs anywhere in the file). Scripts name only Flui's own variables, always double-quoted.
 */
import type { YAMLMap, Document } from 'yaml';
import { parseAllDocuments, isMap, isSeq, isScalar, YAMLSeq } from 'yaml';
import { ServiceError } from '../../errors.ts';
import type { Application } from '../../manifest/schema.ts';
import { DNS_LABEL, IMAGE_REPOSITORY } from '../../manifest/names.ts';
import type { PushAccess } from '../../registry/push-access.ts';
import { parseImageReference } from '../../registry/reference.ts';
import { appKey, appNameSuffix } from '../github/pipeline-file.ts';
import { UnwritableStringError, writeWorkflowYaml, type YamlValue } from '../github/workflow-yaml.ts';

export { appKey };

/** What the job file depends on besides the manifest: worker settings (never a secret). */
export interface GitLabPipelineOptions {
  push: PushAccess;
  /** The buildah image the job runs in, pinned by digest. */
  builderImage: string;
  /** The instance's own registry (`CI_REGISTRY`), pushed to with the job's token. */
  registryHost?: string;
}

/** Inputs of the entry file, which Flui sets when it creates a pipeline. */
export const PIPELINE_INPUTS = {
  app: 'flui_app',
  deployId: 'flui_deploy_id',
  imageTag: 'flui_image_tag',
  runName: 'flui_run_name',
} as const;

/** The entry file GitLab reads when the project names no other (`ci_config_path` empty). */
export const DEFAULT_ENTRY_PATH = '.gitlab-ci.yml';

/** The stage Flui's job runs in (one of GitLab's default stages). */
export const BUILD_STAGE = 'build';

export function jobFilePath(app: Application): string {
  return `.flui/${appKey(app)}.gitlab-ci.yml`;
}

export function jobName(app: Application): string {
  return `flui-build-${appKey(app)}`;
}

/**
 * CI/CD variables of this app's push credential: the static one and the variable holding its fingerprint, or the
 * token minted for its latest deploy. Named per app (a hash of namespace and name), so apps sharing a project never
 * overwrite each other's.
 */
export function pushVariableNames(app: Application) {
  const suffix = appNameSuffix(app);
  return {
    username: `FLUI_REGISTRY_USERNAME_${suffix}`,
    /** Base64 of the password (a masked value must use a restricted alphabet), masked and hidden where possible. */
    password: `FLUI_REGISTRY_PASSWORD_${suffix}`,
    fingerprint: `FLUI_REGISTRY_FINGERPRINT_${suffix}`,
    /** `minted-token`: this deploy's registry token (a JWT, maskable as it is), masked and hidden where possible. */
    token: `FLUI_REGISTRY_TOKEN_${suffix}`,
  };
}

function invalid(app: Application, message: string, hint?: string): ServiceError {
  return new ServiceError({ service: 'GitLab', kind: 'invalid', message: `${appKey(app)}: ${message}`, hint });
}

/**
 * A manifest string as a GitLab `variables:` value: `$` doubled (literal, never expanded), `$[[` refused (GitLab
 * would interpolate it as an input even there).
 */
export function variableValue(app: Application, what: string, value: string): string {
  if (value.includes('$[[')) {
    throw invalid(app, `${what} contains "$[[", which GitLab reads as an input interpolation`, 'remove it');
  }
  return value.replaceAll('$', () => '$$');
}

const INPUT_PATTERNS = {
  app: '^([a-z0-9][-a-z0-9.]{0,126})?$',
  deploy_id: '^([a-z0-9][-a-z0-9.]{0,200}(/[0-9]{1,6})?)?$',
  image_tag: '^([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?$',
  run_name: '^(flui [a-z0-9][-a-z0-9.]{0,200}(/[0-9]{1,6})?)?$',
} as const;

/** Where the build is kept between `buildah bud` and skopeo's pushes (minted-token). */
const ARCHIVE = 'docker-archive:/tmp/flui-image.tar';

/**
 * The lines that log in, build (`build`, the `buildah bud` line) and push the image as the deploy's tag (its digest
 * written to /tmp/flui-image-digest) and as the commit SHA.
 */
function buildScript(app: Application, options: GitLabPipelineOptions, build: string): string[] {
  const { push } = options;
  const pushes = [
    'buildah push --digestfile /tmp/flui-image-digest "$FLUI_IMAGE:$FLUI_IMAGE_TAG" "docker://$FLUI_IMAGE:$FLUI_IMAGE_TAG"',
    'buildah push "$FLUI_IMAGE:$FLUI_IMAGE_TAG" "docker://$FLUI_IMAGE:$CI_COMMIT_SHA"',
  ];
  if (push.method === 'static') {
    const names = pushVariableNames(app);
    return [
      `printf '%s' "$${names.password}" | base64 -d | buildah login --username "$${names.username}" --password-stdin "$FLUI_REGISTRY"`,
      build,
      ...pushes,
    ];
  }
  if (push.method === 'ci-job-token') {
    if (push.registry !== options.registryHost) {
      throw invalid(
        app,
        `${push.registry} is not this GitLab instance's container registry (${options.registryHost ?? 'none configured'})`,
      );
    }
    // The job's own short-lived credential for CI_REGISTRY (GitLab docs, "Authenticate with the container registry").
    return [
      'printf \'%s\' "$CI_REGISTRY_PASSWORD" | buildah login --username "$CI_REGISTRY_USER" --password-stdin "$CI_REGISTRY"',
      build,
      ...pushes,
    ];
  }
  if (push.method === 'minted-token') {
    // The token is the Bearer credential itself (no token service to trade it with), which buildah cannot send:
    // skopeo can (`--dest-registry-token`), to the image's own registry only (FLUI_IMAGE is on `push.registry`). The
    // builder image must hold skopeo too; the first line fails at once when it does not.
    if (parseImageReference(app.spec.image.repository).host.toLowerCase() !== push.registry.toLowerCase()) {
      throw invalid(app, `the image ${app.spec.image.repository} is not on ${push.registry}, the token's registry`);
    }
    const token = `"$${pushVariableNames(app).token}"`;
    return [
      'skopeo --version',
      build,
      `buildah push "$FLUI_IMAGE:$FLUI_IMAGE_TAG" ${ARCHIVE}`,
      `skopeo copy --dest-registry-token ${token} --digestfile /tmp/flui-image-digest ${ARCHIVE} "docker://$FLUI_IMAGE:$FLUI_IMAGE_TAG"`,
      `skopeo copy --dest-registry-token ${token} ${ARCHIVE} "docker://$FLUI_IMAGE:$CI_COMMIT_SHA"`,
    ];
  }
  throw new ServiceError({
    service: 'GitLab',
    kind: 'misconfigured',
    message: `${appKey(app)}: the GitLab backend cannot push to ${push.registry} with "${push.method}"`,
    hint:
      "push to the GitLab instance's own registry (GITLAB_REGISTRY_HOST, the job's token), use a registry that trusts " +
      `Flui's tokens ("minted-token"), or opt in to a stored credential with FLUI_REGISTRY_PUSH='{"${push.registry}":{"method":"static"}}'`,
  });
}

/** The app's job file: its inputs, the pipeline name, and the build job. */
export function renderJobFile(app: Application, options: GitLabPipelineOptions): string {
  const { source, image, deploy } = app.spec;
  if (!DNS_LABEL.test(app.metadata.namespace) || !DNS_LABEL.test(app.metadata.name)) {
    throw invalid(app, 'namespace and name must be DNS labels');
  }
  if (!IMAGE_REPOSITORY.test(image.repository)) throw invalid(app, `"${image.repository}" is not an image repository`);
  const key = appKey(app);
  const buildArgs = Object.entries(source.buildArgs).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const variables: Record<string, YamlValue> = {
    STORAGE_DRIVER: 'vfs',
    BUILDAH_ISOLATION: 'chroot',
    BUILDAH_FORMAT: 'docker',
    FLUI_REGISTRY: options.push.registry,
    FLUI_IMAGE: image.repository,
    FLUI_IMAGE_TAG: '$[[ inputs.image_tag ]]',
    FLUI_CONTEXT: variableValue(app, 'the build context', source.context),
    FLUI_DOCKERFILE: variableValue(app, 'the Dockerfile path', source.dockerfile),
  };
  const argFlags: string[] = [];
  for (const [name, value] of buildArgs) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw invalid(app, `build arg name "${name}" is not a variable name`);
    variables[`FLUI_BUILD_ARG_${name}`] = variableValue(app, `build arg ${name}`, value);
    argFlags.push(`--build-arg ${name}="$FLUI_BUILD_ARG_${name}"`);
  }
  const dockerfile = source.context === '.' ? '"$FLUI_DOCKERFILE"' : '"$FLUI_CONTEXT/$FLUI_DOCKERFILE"';
  const header = {
    spec: {
      inputs: {
        app: {
          description: 'Set by Flui: the app this pipeline builds (empty: not a Flui pipeline)',
          default: '',
          regex: INPUT_PATTERNS.app,
        },
        deploy_id: {
          description: 'Set by Flui: the deploy (run key) this pipeline builds',
          default: '',
          regex: INPUT_PATTERNS.deploy_id,
        },
        image_tag: {
          description: 'Set by Flui: the tag naming this deploy, pushed besides the commit SHA',
          default: '',
          regex: INPUT_PATTERNS.image_tag,
        },
        run_name: {
          description: 'Set by Flui: the pipeline name Flui finds the pipeline by',
          default: '',
          regex: INPUT_PATTERNS.run_name,
        },
      },
    },
  };
  const body = {
    // Through a variable: GitLab's schema wants a non-empty `workflow:name`, and a name whose variables expand to
    // blank (every pipeline Flui did not start) leaves the pipeline unnamed (gitlab-org/gitlab!105096).
    variables: { FLUI_PIPELINE_NAME: '$[[ inputs.run_name ]]' },
    workflow: { name: '$FLUI_PIPELINE_NAME' },
    [jobName(app)]: {
      stage: BUILD_STAGE,
      image: { name: options.builderImage, entrypoint: [''] },
      rules: [{ if: `$CI_PIPELINE_SOURCE == "api" && "$[[ inputs.app ]]" == "${key}"` }],
      // The deploy can be cancelled; a newer push never cancels it (interruptible only concerns auto-cancel).
      interruptible: false,
      timeout: `${deploy.buildTimeoutMinutes}m`,
      variables,
      script: [
        ...buildScript(
          app,
          options,
          [
            'buildah bud --layers',
            ...argFlags,
            `-f ${dockerfile}`,
            '-t "$FLUI_IMAGE:$FLUI_IMAGE_TAG"',
            '"$FLUI_CONTEXT"',
          ].join(' '),
        ),
        'echo "Pushed $FLUI_IMAGE:$FLUI_IMAGE_TAG as $(cat /tmp/flui-image-digest)"',
      ],
    },
  };
  const comment = [
    `Managed by Flui for the app ${key}: Flui rewrites this file when it differs from the app's manifest,`,
    'so edit the manifest instead. Its job runs only in pipelines Flui starts, and pushes the image by digest.',
  ];
  try {
    return `${writeWorkflowYaml(header, comment)}---\n${writeWorkflowYaml(body)}`;
  } catch (err) {
    if (err instanceof UnwritableStringError) {
      throw invalid(app, `a value of the manifest cannot be written to a GitLab CI file (${err.message})`);
    }
    throw err;
  }
}

/** This app's `include:` entry in the entry file, passing the entry file's inputs on. */
function includeEntry(app: Application) {
  return {
    local: jobFilePath(app),
    inputs: {
      app: `$[[ inputs.${PIPELINE_INPUTS.app} ]]`,
      deploy_id: `$[[ inputs.${PIPELINE_INPUTS.deployId} ]]`,
      image_tag: `$[[ inputs.${PIPELINE_INPUTS.imageTag} ]]`,
      run_name: `$[[ inputs.${PIPELINE_INPUTS.runName} ]]`,
    },
  };
}

function entryInputs() {
  const optional = (description: string) => ({ description, default: '' });
  return {
    [PIPELINE_INPUTS.app]: optional('Set by Flui in the pipelines it starts; empty in every other pipeline'),
    [PIPELINE_INPUTS.deployId]: optional('Set by Flui: the deploy this pipeline builds'),
    [PIPELINE_INPUTS.imageTag]: optional('Set by Flui: the tag naming the deploy'),
    [PIPELINE_INPUTS.runName]: optional('Set by Flui: the pipeline name'),
  };
}

/** The entry file Flui creates in a project that has none: the inputs, and the app's include. */
export function renderNewEntryFile(app: Application): string {
  const comment = [
    'Created by Flui. Add your own jobs here: Flui only ever adds pipeline inputs to the header and one include',
    'per app, and its jobs run only in the pipelines Flui starts.',
  ];
  return `${writeWorkflowYaml({ spec: { inputs: entryInputs() } }, comment)}---\n${writeWorkflowYaml({ include: [includeEntry(app)] })}`;
}

export interface EntryUpdate {
  /** The new content; undefined when the file already holds everything (no commit). */
  content?: string;
  /** What Flui added, in words for the deploy's status (empty when nothing). */
  changes: string[];
}

/**
 * Adds what `app` needs to an existing entry file, keeping the rest (comments included). Refuses a file Flui cannot
 * extend safely, with a `invalid` error saying what to change.
 */
export function updateEntryFile(app: Application, path: string, text: string): EntryUpdate {
  const docs = parseAllDocuments(text);
  const refuse = (why: string, hint?: string) => invalid(app, `cannot add Flui's pipeline to ${path}: ${why}`, hint);
  if (!Array.isArray(docs)) throw refuse('it is empty');
  for (const d of docs)
    if (d.errors.length) throw refuse(`it is not valid YAML (${d.errors[0]!.message.split('\n')[0]})`);
  const isHeader = (d: Document) => isMap(d.contents) && d.contents.has('spec');
  let header: Document | undefined;
  let body: Document;
  if (docs.length === 2 && isHeader(docs[0]!)) [header, body] = [docs[0]!, docs[1]!];
  else if (docs.length === 1 && !isHeader(docs[0]!)) body = docs[0]!;
  else throw refuse('it should hold one YAML document, or a `spec:` header and one document');
  if (body.contents === null || body.contents === undefined) body.contents = body.createNode({}) as never;
  if (!isMap(body.contents)) throw refuse('its top level is not a mapping');
  const top = body.contents as YAMLMap;

  const workflow = top.get('workflow');
  if (isMap(workflow) && workflow.has('name')) {
    throw refuse(
      'it sets `workflow:name`, which would hide the name Flui gives its pipelines (and finds them by)',
      'remove `workflow:name` from it, or name only your own pipelines through a variable set in `workflow:rules`',
    );
  }
  const changes: string[] = [];

  // Header: the four optional inputs.
  const wanted: Record<string, { description: string; default: string }> = entryInputs();
  let headerText: string;
  if (header) {
    const spec = header.get('spec');
    if (!isMap(spec)) throw refuse('its `spec:` header is not a mapping');
    let inputs = spec.get('inputs');
    if (inputs === undefined || inputs === null) {
      inputs = header.createNode({});
      spec.set('inputs', inputs);
    }
    if (!isMap(inputs)) throw refuse('its `spec:inputs` is not a mapping');
    const missing = Object.keys(wanted).filter((k) => {
      const current = (inputs as YAMLMap).get(k);
      return !(isMap(current) && current.get('default') === '');
    });
    for (const k of missing) (inputs as YAMLMap).set(k, header.createNode(wanted[k]));
    if (missing.length) changes.push(`added the pipeline inputs ${missing.join(', ')} (optional) to its header`);
    headerText = header.toString();
  } else {
    changes.push(`added a header declaring the optional pipeline inputs ${Object.keys(wanted).join(', ')}`);
    headerText = writeWorkflowYaml({ spec: { inputs: wanted } });
  }

  // Body: the app's include, and the build stage.
  const entry = includeEntry(app);
  const include: unknown = top.get('include', true);
  const isOurs = (node: unknown) =>
    (isMap(node) && node.get('local') === entry.local) || (isScalar(node) && node.value === entry.local);
  const matches = (node: unknown) => {
    if (!isMap(node) || node.get('local') !== entry.local) return false;
    const inputs = node.get('inputs');
    return (
      isMap(inputs) && Object.entries(entry.inputs).every(([k, v]) => inputs.get(k) === v) && inputs.items.length === 4
    );
  };
  if (include === undefined || include === null) {
    top.set('include', body.createNode([entry]));
    changes.push(`included ${entry.local}`);
  } else {
    let seq: YAMLSeq;
    if (isSeq(include)) seq = include;
    else {
      seq = new YAMLSeq();
      seq.items.push(include);
      top.set('include', seq);
    }
    const at = seq.items.findIndex(isOurs);
    if (at < 0) {
      seq.items.push(body.createNode(entry));
      changes.push(`included ${entry.local}`);
    } else if (!matches(seq.items[at])) {
      seq.items[at] = body.createNode(entry);
      changes.push(`restored the include of ${entry.local}`);
    }
  }
  const stages = top.get('stages');
  if (stages !== undefined && stages !== null) {
    if (!isSeq(stages)) throw refuse('its `stages:` is not a list');
    if (!stages.items.some((s) => isScalar(s) && s.value === BUILD_STAGE)) {
      stages.items.unshift(body.createNode(BUILD_STAGE));
      changes.push(`added the stage "${BUILD_STAGE}" to its stages`);
    }
  }
  if (!changes.length) return { changes };
  const bodyText = body.toString();
  return { content: `${headerText.replace(/\n*$/, '\n')}---\n${bodyText.replace(/^---\n/, '')}`, changes };
}

/** What `ensurePipeline` must write: each file's new content, or nothing when all are current. */
export function plannedFiles(
  app: Application,
  options: GitLabPipelineOptions,
  current: { entryPath: string; entry?: string; job?: string },
): { files: { path: string; content: string; create: boolean }[]; changes: string[] } {
  const job = renderJobFile(app, options);
  const files: { path: string; content: string; create: boolean }[] = [];
  const changes: string[] = [];
  if (current.job !== job) {
    files.push({ path: jobFilePath(app), content: job, create: current.job === undefined });
    changes.push(current.job === undefined ? `created ${jobFilePath(app)}` : `updated ${jobFilePath(app)}`);
  }
  if (current.entry === undefined) {
    files.push({ path: current.entryPath, content: renderNewEntryFile(app), create: true });
    changes.push(`created ${current.entryPath} (it only includes Flui's file)`);
  } else {
    const update = updateEntryFile(app, current.entryPath, current.entry);
    if (update.content !== undefined) {
      files.push({ path: current.entryPath, content: update.content, create: false });
      changes.push(...update.changes.map((c) => `${current.entryPath}: ${c}`));
    }
  }
  return { files, changes };
}
