/**
 * How recorded histories are stored (test/workflows/histories/*.json): the History message as plain JSON through the
 * generated code of @temporalio/proto (int64 and bytes as strings, enums by name). Not the proto3 JSON of `temporal
 * workflow show`: the SDK converts that form with one copy of protobufjs and checks it against another
 * (@temporalio/common and @temporalio/proto each get their own under this lock file), so it fails here with
 * "type must be a Type".
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import proto from '@temporalio/proto';

const { History: HistoryMessage } = proto.temporal.api.history.v1;
export type History = proto.temporal.api.history.v1.IHistory;

export const HISTORIES_DIR = fileURLToPath(new URL('./histories/', import.meta.url));

export function historyToText(history: History): string {
  const message = HistoryMessage.fromObject(history);
  const plain = HistoryMessage.toObject(message, { longs: String, enums: String, bytes: String });
  return `${JSON.stringify(plain, null, 2)}\n`;
}

export function historyFromText(text: string): proto.temporal.api.history.v1.History {
  return HistoryMessage.fromObject(JSON.parse(text) as Record<string, unknown>);
}

/** Every recorded history, by file name without `.json`, sorted. */
export async function recordedHistories(): Promise<{ name: string; history: proto.temporal.api.history.v1.History }[]> {
  const files = (await readdir(HISTORIES_DIR)).filter((f) => f.endsWith('.json')).sort();
  return Promise.all(
    files.map(async (file) => ({
      name: file.slice(0, -'.json'.length),
      history: historyFromText(await readFile(join(HISTORIES_DIR, file), 'utf8')),
    })),
  );
}
