/**
 * The commands of `flui`, their options and help text. Deliberately free of imports: `flui --help` loads this module
 * and nothing else.
 */

export type OptionName = 'follow' | 'policy' | 'namespace' | 'reason' | 'limit' | 'build' | 'to';

export interface CommandSpec {
  args: string;
  options: OptionName[];
  summary: string;
  details: string;
  examples: string[];
  /** Positional arguments allowed after the first (a sub-command's). */
  moreArgs?: number;
  /** What an option means for this command, where it differs from the usual meaning. */
  optionHelp?: Partial<Record<OptionName, string>>;
}

export const COMMANDS = {
  deploy: {
    args: '<manifest.yaml>',
    options: ['follow', 'policy', 'namespace'],
    summary: 'start a deploy of the app a manifest describes',
    details:
      "Validates the manifest (an invalid one starts nothing) and asks the app's deploy workflow for a deploy. If a\n" +
      'deploy of the app is in flight, the new one supersedes it (default) or queues behind it (--policy queue).\n' +
      'With --json and --follow, stdout carries one JSON object per line: {"event":"started",…}, then\n' +
      '{"event":"status",…} per change, then {"event":"finished","phase":…,"exitCode":…}.',
    examples: ['flui deploy flui.yaml --follow', 'flui deploy flui.yaml --policy queue --json'],
  },
  status: {
    args: '<app>',
    options: ['namespace'],
    summary: 'phase, CI run, digest and timings of the current or last deploy',
    details:
      'Asks the running deploy for its status; when no worker answers within 5 s, shows the state the deploy\n' +
      'recorded at its last phase change (and says so on stderr).',
    examples: ['flui status hello', 'flui status hello -n shop --json'],
  },
  cancel: {
    args: '<app>',
    options: ['namespace', 'reason'],
    summary: 'stop the deploy in flight: its CI run is cancelled, nothing is rolled out',
    details:
      'Without --reason the deploy ends Cancelled (through Temporal cancellation); with one it fails with that\n' +
      'reason. Either way the CI run is cancelled and nothing is rolled out.',
    examples: ['flui cancel hello', 'flui cancel hello --reason "wrong branch"'],
  },
  retry: {
    args: '<app>',
    options: ['namespace', 'follow'],
    summary: 're-run a failed deploy from the phase that failed',
    details:
      'A deploy whose build or rollout failed waits (retryWindowMinutes in the manifest) for a retry; this re-runs\n' +
      'it from the failed phase in the same workflow, keeping its history.',
    examples: ['flui retry hello --follow'],
  },
  builds: {
    args: '<app>',
    options: ['namespace', 'limit'],
    summary: 'past deploys, newest first: commit, CI run, outcome, start, duration',
    details: "Read from Temporal's visibility store (each deploy's recorded state), without replaying histories.",
    examples: ['flui builds hello --limit 5'],
  },
  logs: {
    args: '<app>',
    options: ['namespace', 'build', 'follow'],
    summary: "the build's own log, as its CI keeps it; --follow until the build ends",
    details:
      'Prints the log of the newest deploy that ran CI (--build N: the N-th newest) on stdout; which deploy and CI\n' +
      'run it is from goes to stderr. The worker reads it from the CI (the CLI needs no CI credential). GitHub\n' +
      "serves a job's log once the job has finished: while the run goes on, the finished jobs are printed, and a line\n" +
      "points at the run's page for the live output. With --json: one object {deployId, ciRun, text, done, …};\n" +
      'with --json --follow, one per line: {"event":"build",…}, {"event":"log","text":…} per piece, then\n' +
      '{"event":"end","done":…}. --follow right after `flui deploy` waits for the new deploy to start its CI run.\n' +
      'Ctrl-C stops reading (exit 130); the build goes on.',
    examples: ['flui logs hello', 'flui logs hello --follow', 'flui logs hello --build 2 --json'],
    optionHelp: { follow: '-f, --follow             keep printing the log as it comes, until the build ends' },
  },
  images: {
    args: '<app>',
    options: ['namespace'],
    summary: 'digests rolled out for the app, newest first, the running one marked *',
    details: 'Read from the cluster (KUBECONFIG): the history the rollouts record beside the app.',
    examples: ['flui images hello'],
  },
  rollback: {
    args: '<app>',
    options: ['namespace', 'to', 'follow'],
    summary: 'roll back to an earlier image, through the deploy workflow',
    details:
      'Rolls the app back to --to <digest> (see `flui images`), or to the image before the current one. It is a\n' +
      'deploy like any other: it supersedes one in flight and shows in Temporal Web UI. The image history is read\n' +
      'from the cluster first (KUBECONFIG): when it holds no such good image, nothing is started (exit 1).',
    examples: ['flui rollback hello', 'flui rollback hello --to sha256:… --follow'],
  },
  'base-images': {
    args: 'import <archive> <name:tag>',
    options: [],
    moreArgs: 2,
    summary: "import a base image (OCI layout or tarball) into the installation's registry, for offline builds",
    details:
      'For self-hosted builds (FLUI_CI=self-hosted): FROM lines resolve against FLUI_BASE_REGISTRY, and this seeds it\n' +
      'without Docker Hub. A name without a registry (node:20) goes to <FLUI_BASE_REGISTRY>/library/node:20. Runs\n' +
      "with the worker's configuration (its registry credential, for that registry only); needs no Temporal.",
    examples: [
      'flui base-images import node-20.oci.tar node:20',
      'flui base-images import busybox.tar busybox:1.36 --json',
    ],
  },
} satisfies Record<string, CommandSpec>;

export type CommandName = keyof typeof COMMANDS;

export function isCommand(name: string): name is CommandName {
  return Object.hasOwn(COMMANDS, name);
}

const OPTION_HELP: Record<OptionName, string> = {
  follow: '-f, --follow             show each phase until the deploy ends; exit code says how it ended',
  policy: "    --policy P           supersede (default: the manifest's deploy.policy) or queue",
  namespace: '-n, --namespace NS       Kubernetes namespace of the app (default: the manifest\'s, or "default")',
  reason: '    --reason TEXT        why; the deploy fails with this reason',
  limit: '    --limit N            at most N deploys (default 20, up to 1000)',
  build: '    --build N            the N-th newest build with a CI run (default 1)',
  to: '    --to sha256:…        digest to roll back to (default: the image before the current one)',
};

const OPTION_SYNOPSIS: Record<OptionName, string> = {
  follow: '[--follow]',
  policy: '[--policy supersede|queue]',
  namespace: '',
  reason: '[--reason TEXT]',
  limit: '[--limit N]',
  build: '[--build N]',
  to: '[--to sha256:…]',
};

function synopsis(name: CommandName): string {
  const c: CommandSpec = COMMANDS[name];
  return ['flui', name, c.args, ...c.options.map((o) => OPTION_SYNOPSIS[o])].filter(Boolean).join(' ');
}

const EXIT_HELP = `Exit codes:
  0  success
  1  the deploy failed, or there is nothing to act on (no such deploy, nothing to cancel, retry or roll back to)
  2  bad usage or an invalid manifest: nothing was started
  3  the deploy was cancelled, or superseded by a newer deploy of the app
  4  Temporal or the cluster cannot be reached, or the configuration is invalid
  130  interrupted (Ctrl-C) while following: the deploy itself goes on`;

const CONFIG_HELP = `Configuration (environment; the CLI reads only these, never the worker's settings):
  TEMPORAL_ADDRESS      Temporal frontend host:port (default 127.0.0.1:7233, the one \`npm start\` runs)
  TEMPORAL_NAMESPACE    Temporal namespace (default "default")
  TEMPORAL_API_KEY, TEMPORAL_TLS, TEMPORAL_TLS_CLIENT_CERT_PATH, TEMPORAL_TLS_CLIENT_KEY_PATH,
  TEMPORAL_TLS_SERVER_CA_CERT_PATH, TEMPORAL_TLS_SERVER_NAME (…_DATA for PEM text)   TLS or Temporal Cloud
  TEMPORAL_PROFILE, TEMPORAL_CONFIG_FILE   a profile of the Temporal CLI's config file, as \`temporal\` reads it
  TEMPORAL_UI_URL       Web UI to link deploys to (default: the local dev server's, or Temporal Cloud's)
  TEMPORAL_CONNECT_TIMEOUT_MS   how long to wait for Temporal (default 5000)
  FLUI_TASK_QUEUE       task queue of the Flui workers (default flui-deploy)
  KUBECONFIG            the cluster \`flui images\` and \`flui rollback\` read (default ~/.kube/config)`;

export const HELP = `flui — deploy applications with Flui's build pipeline

Usage:
${(Object.keys(COMMANDS) as CommandName[]).map((name) => `  ${synopsis(name)}\n      ${COMMANDS[name].summary}`).join('\n')}

Options (every command):
      --json               machine-readable output on stdout (stable keys, nothing else)
  -n, --namespace NS       Kubernetes namespace of the app (default: the manifest's, or "default")
  -h, --help               help; \`flui <command> --help\` for a command's options

${EXIT_HELP}

${CONFIG_HELP}`;

export function commandHelp(name: CommandName): string {
  const c: CommandSpec = COMMANDS[name];
  const options = [
    ...c.options.map((o) => c.optionHelp?.[o] ?? OPTION_HELP[o]),
    '    --json               machine-readable output',
  ];
  return `${synopsis(name)} [-n NS] [--json]

${c.summary[0]!.toUpperCase()}${c.summary.slice(1)}.

${c.details}

Options:
${options.map((o) => `  ${o}`).join('\n')}

Examples:
${c.examples.map((e) => `  ${e}`).join('\n')}

${EXIT_HELP}
`;
}
