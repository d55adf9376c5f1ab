/**
 * The plumbing of an emulator's command-line launcher (`main.ts`): the options every emulator takes, exit 2 with the
 * usage on a bad one, whole numbers, and a clean stop on Ctrl-C that prints the contract check's tally.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

type Options = NonNullable<ParseArgsConfig['options']>;

/** Options both launchers take (each names its own in its usage text). */
const COMMON = {
  host: { type: 'string' },
  port: { type: 'string' },
  'data-dir': { type: 'string' },
  'webhook-url': { type: 'string' },
  'build-ms': { type: 'string' },
  'rate-limit': { type: 'string' },
  'insecure-registry': { type: 'string', multiple: true },
  'no-contract': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies Options;

export interface Launcher {
  /** Says `message` and the usage on stderr, and exits 2. */
  fail(message: string): never;
  /** `--name`'s value as a whole number ≥ 0 (undefined when not given); anything else fails. */
  number(value: string | undefined, name: string): number | undefined;
}

type Config<O extends Options> = { options: typeof COMMON & O; strict: true; allowPositionals: false };

/**
 * The command line's values (the common options and `options`), or undefined after printing the usage for `--help`.
 */
export function parseLauncherArgs<O extends Options>(
  usage: string,
  options: O,
): (Launcher & { values: ReturnType<typeof parseArgs<Config<O>>>['values'] }) | undefined {
  const fail = (message: string): never => {
    process.stderr.write(`${message}\n\n${usage}\n`);
    process.exit(2);
  };
  const launcher: Launcher = {
    fail,
    number(value, name) {
      if (value === undefined) return undefined;
      const n = Number(value);
      if (!Number.isInteger(n) || n < 0) fail(`--${name} must be a whole number ≥ 0, not "${value}"`);
      return n;
    },
  };
  let parsed;
  try {
    const config: Config<O> = { options: { ...COMMON, ...options }, strict: true, allowPositionals: false };
    parsed = parseArgs(config);
  } catch (err) {
    return fail((err as Error).message);
  }
  if ((parsed.values as { help?: boolean }).help) {
    process.stdout.write(`${usage}\n`);
    return undefined;
  }
  return { values: parsed.values, ...launcher };
}

export interface Stoppable {
  contract: { summary(): { operations: number; responses: number; violations: unknown[] } };
  stop(): Promise<void>;
}

/** On SIGINT or SIGTERM: print the contract check's tally, stop the emulator, exit 0 (1 when stopping failed). */
export function stopOnSignal(emulator: Stoppable): void {
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    const { operations, responses, violations } = emulator.contract.summary();
    process.stdout.write(
      `stopping; contract: ${responses} responses of ${operations} operations checked, ${violations.length} violations\n`,
    );
    emulator.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

/** Runs a launcher's `main`; a failure is one line on stderr prefixed with the emulator's name, and exit 1. */
export function launch(name: string, main: () => Promise<void>): void {
  main().catch((err: unknown) => {
    process.stderr.write(`${name}: ${(err as Error).message}\n`);
    process.exit(1);
  });
}
