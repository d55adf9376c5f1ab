/**
 * The exit codes of `flui` and how outcomes map to them. The client library throws errors of a `kind`; only the CLI
 * decides what a kind means to a shell. Nothing here loads the library: `flui --help` stays fast.
 */
import type { FluiError } from '../client/index.ts';
import type { DeployPhase } from '../workflows/contract.ts';

export const EXIT = {
  ok: 0,
  /** The deploy failed, or there is nothing to act on (no such deploy, nothing to cancel or retry). */
  failed: 1,
  /** Bad usage or an invalid manifest: nothing was started. */
  usage: 2,
  /** The deploy was cancelled, or superseded by a newer deploy of the app. */
  cancelled: 3,
  /** Temporal or the cluster cannot be reached, or the configuration is invalid. */
  unavailable: 4,
  /** Ctrl-C while following: the deploy itself goes on. */
  interrupted: 130,
} as const;

/** A mistake in the command line, found before anything was read or started. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** How a followed deploy's last phase maps to an exit code. */
export function exitCodeOf(phase: DeployPhase): number {
  if (phase === 'succeeded') return EXIT.ok;
  if (phase === 'cancelled' || phase === 'superseded') return EXIT.cancelled;
  return EXIT.failed;
}

const BY_KIND: Record<FluiError['kind'], number> = {
  invalid: EXIT.usage,
  'not-found': EXIT.failed,
  failed: EXIT.failed,
  unavailable: EXIT.unavailable,
};

/**
 * What `flui <command>` prints for an error and exits with. Errors are told apart by name, not `instanceof`, so this
 * module needs none of the modules that define them.
 */
export function reportError(err: unknown, command: string): { message: string; code: number } {
  const e = err instanceof Error ? err : new Error(String(err));
  switch (e.name) {
    case 'UsageError':
      return {
        message: `flui ${command}: ${e.message}\nRun \`flui ${command} --help\` for usage.\n`,
        code: EXIT.usage,
      };
    case 'ManifestError':
      return {
        message: `${e.message}\nNothing was deployed. Fix the fields above and run the command again.\n`,
        code: EXIT.usage,
      };
    case 'ConfigError':
      return {
        message: `flui: ${e.message}\nFix the variable named above (see \`flui --help\`).\n`,
        code: EXIT.unavailable,
      };
    case 'FluiError':
      return { message: `flui ${command}: ${e.message}\n`, code: BY_KIND[(e as FluiError).kind] ?? EXIT.failed };
    default:
      return { message: `flui ${command}: ${e.message}\n`, code: EXIT.failed };
  }
}
