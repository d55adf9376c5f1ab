/**
 * What every command module has: `parse` turns the command line into the command's own options (a {@link UsageError}
 * when they are wrong, before any configuration is read), `run` does the work with injected output and Temporal
 * client, and returns the exit code. Tests call `run` directly.
 */
import type { Client } from '@temporalio/client';
import type { ClientConfig } from '../config.ts';
import { UsageError } from './exit.ts';
import type { Io } from './io.ts';

/** The command line, as the dispatcher parsed it. */
export interface Input {
  /** The positional argument: the app, or for `deploy` the manifest file. */
  target: string;
  namespace?: string;
  follow: boolean;
  policy?: string;
  reason?: string;
  limit?: string;
  build?: string;
  to?: string;
  /** Positional arguments after the target, for commands whose spec allows them (`moreArgs`). */
  args?: string[];
}

/** What every command runs with, whatever its options. */
export interface Context {
  io: Io;
  /** --json: machine-readable output on stdout, nothing else. */
  json: boolean;
  /** Client configuration only: the CLI never reads the worker's settings. */
  config: ClientConfig;
  /** Who asked (USER), shown in Web UI beside a deploy. */
  requestedBy?: string;
  /** A Temporal client, connected on first use and closed when the command ends. */
  client(): Promise<Client>;
}

export interface Command<O> {
  parse(input: Input): O;
  run(options: O & Context): Promise<number>;
}

const LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** The app and namespace of a command that takes `<app>`. */
export function appOf(input: Input): { app: string; namespace: string } {
  if (!LABEL.test(input.target))
    throw new UsageError(`"${input.target}" is not an app name (lowercase letters, digits and "-")`);
  return { app: input.target, namespace: namespaceOf(input) ?? 'default' };
}

export function namespaceOf(input: Input): string | undefined {
  if (input.namespace !== undefined && !LABEL.test(input.namespace))
    throw new UsageError(`"${input.namespace}" is not a namespace name`);
  return input.namespace;
}

/** A whole number flag from 1 to 1000. */
export function countOf(value: string | undefined, fallback: number, message: string): number {
  if (value === undefined) return fallback;
  if (!/^[0-9]+$/.test(value) || Number(value) < 1 || Number(value) > 1000) throw new UsageError(message);
  return Number(value);
}
