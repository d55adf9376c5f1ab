/**
 * `flui`: deploys and their history from the terminal, kubectl/gh style. Every command takes --json (stable keys,
 * nothing else on stdout); errors go to stderr and say what to do next; exit codes say how it went (src/cli/exit.ts).
 *
 * This dispatcher loads only the help text until a command is known to be well formed; then that command's module
 * (src/cli/<command>.ts), the client configuration, and a Temporal client when the command needs one.
 */
import { parseArgs } from 'node:util';
import type { Client } from '@temporalio/client';
import type { ClientConfig } from '../config.ts';
import type { Command, Input } from './command.ts';
import { EXIT, reportError, UsageError } from './exit.ts';
import { commandHelp, COMMANDS, HELP, isCommand, type CommandName, type CommandSpec } from './help.ts';
import { processIo, type Io } from './io.ts';

export { EXIT } from './exit.ts';

const MODULES: Record<CommandName, () => Promise<{ command: Command<unknown> }>> = {
  deploy: () => import('./deploy.ts'),
  status: () => import('./status.ts'),
  cancel: () => import('./cancel.ts'),
  retry: () => import('./retry.ts'),
  builds: () => import('./builds.ts'),
  logs: () => import('./logs.ts'),
  images: () => import('./images.ts'),
  rollback: () => import('./rollback.ts'),
  'base-images': () => import('./base-images.ts'),
};

const OPTIONS = {
  json: { type: 'boolean' },
  follow: { type: 'boolean', short: 'f' },
  policy: { type: 'string' },
  namespace: { type: 'string', short: 'n' },
  reason: { type: 'string' },
  limit: { type: 'string' },
  build: { type: 'string' },
  to: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

const commandList = () => Object.keys(COMMANDS).join(', ');

export async function main(argv: string[], io: Io = processIo, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, options: OPTIONS });
  } catch (err) {
    io.err(`flui: ${(err as Error).message}\nRun \`flui --help\` for usage.\n`);
    return EXIT.usage;
  }
  const { values: o, positionals } = parsed;
  const [name, target, ...rest] = positionals;
  if (name === 'help') {
    if (target !== undefined && !isCommand(target)) {
      io.err(`flui help: unknown command "${target}" (one of ${commandList()})\n`);
      return EXIT.usage;
    }
    io.out(target === undefined ? `${HELP}\n` : commandHelp(target));
    return EXIT.ok;
  }
  if (!name) {
    (o.help ? io.out : io.err)(`${HELP}\n`);
    return o.help ? EXIT.ok : EXIT.usage;
  }
  if (!isCommand(name)) return usage(io, name, `unknown command "${name}" (one of ${commandList()})`, false);
  if (o.help) {
    io.out(commandHelp(name));
    return EXIT.ok;
  }
  const spec: CommandSpec = COMMANDS[name];
  // Options each command understands; anything else is a mistake worth pointing out.
  const stray = Object.keys(o).find((k) => k !== 'json' && !spec.options.includes(k as CommandSpec['options'][0]));
  if (stray) return usage(io, name, `--${stray} does not apply to ${name}`);
  if (!target) return usage(io, name, `missing ${spec.args}`);
  if (rest.length > (spec.moreArgs ?? 0)) return usage(io, name, `unexpected argument "${rest[spec.moreArgs ?? 0]}"`);
  const input: Input = { ...o, target, follow: Boolean(o.follow), ...(rest.length ? { args: rest } : {}) };

  let client: Client | undefined;
  try {
    const { command } = await MODULES[name]();
    const options = command.parse(input);
    // Only now, with the command line known good, is configuration read: the client part alone.
    const config = await clientConfig(env);
    return await command.run({
      ...(options as object),
      io,
      json: Boolean(o.json),
      config,
      requestedBy: env.USER || undefined,
      client: async () => (client ??= await (await import('../client/index.ts')).connect(config)),
    });
  } catch (err) {
    const { message, code } = reportError(err, name);
    io.err(message);
    return code;
  } finally {
    await client?.connection.close().catch(() => undefined);
  }
}

/** A usage error: what is wrong, and where the help is (the command's own, when the command exists). */
function usage(io: Io, name: string, message: string, known = true): number {
  if (!known) {
    io.err(`flui ${name}: ${message}\nRun \`flui --help\` for usage.\n`);
    return EXIT.usage;
  }
  const { message: text, code } = reportError(new UsageError(message), name);
  io.err(text);
  return code;
}

async function clientConfig(env: NodeJS.ProcessEnv): Promise<ClientConfig> {
  const { loadClientConfig } = await import('../config.ts');
  return loadClientConfig(env);
}
