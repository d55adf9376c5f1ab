/**
 * The worker's logger, for its own lines and the Temporal SDK's (the Runtime logger, with Core's logs forwarded to
 * it): plain text as the SDK prints it, or with FLUI_LOG_FORMAT=json one JSON object per line on stderr
 * (`{"time","level","message",...meta}`), which log collectors parse without rules.
 */
import { DefaultLogger, type LogEntry, type LogLevel, type Logger } from '@temporalio/worker';

export type LogFormat = 'text' | 'json';

/** One log line as JSON: time (ISO, ms), level, message, then the entry's metadata (never overriding those three). */
export function jsonLogLine(entry: LogEntry): string {
  const time = new Date(Number(entry.timestampNanos / 1_000_000n)).toISOString();
  const meta = entry.meta ? safeMeta(entry.meta) : {};
  return JSON.stringify({ ...meta, time, level: entry.level.toLowerCase(), message: entry.message });
}

/** Metadata that always serialises: errors as their message and stack, bigints as strings, cycles cut. */
function safeMeta(meta: Record<string, unknown>): Record<string, unknown> {
  const seen = new WeakSet<object>();
  return JSON.parse(
    JSON.stringify(meta, (_key, value: unknown) => {
      if (typeof value === 'bigint') return value.toString();
      if (value instanceof Error) return { name: value.name, message: value.message, stack: value.stack };
      if (value && typeof value === 'object') {
        if (seen.has(value)) return '[circular]';
        seen.add(value);
      }
      return value;
    }) ?? '{}',
  ) as Record<string, unknown>;
}

/** The Runtime's logger in `format`, writing to `write` (default: stderr). */
export function createLogger(
  level: LogLevel,
  format: LogFormat,
  write: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
): Logger {
  return format === 'json' ? new DefaultLogger(level, (entry) => write(jsonLogLine(entry))) : new DefaultLogger(level);
}

/** The worker's own progress lines through `logger` (JSON mode) or straight to stderr (text mode, as before). */
export function progressLine(format: LogFormat, logger: Logger): (line: string) => void {
  if (format === 'json') return (line) => logger.info(line, { component: 'flui' });
  return (line) => process.stderr.write(`${line}\n`);
}
