/**
 * JSON Schema for manifests, generated from the zod schemas, for editor completion and validation
 * (`# yaml-language-server: $schema=...` in a manifest). Regenerate with `npm run schema`; a test keeps the committed
 * file current.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { manifestSchema } from './schema.ts';

export const SCHEMA_PATH = fileURLToPath(new URL('../../schema/manifest.schema.json', import.meta.url));

export function manifestJsonSchema(): string {
  const schema = z.toJSONSchema(manifestSchema, { io: 'input', target: 'draft-2020-12' });
  return `${JSON.stringify({ ...schema, $id: 'https://flui.dev/schemas/manifest.schema.json', title: 'Flui manifest' }, null, 2)}\n`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  writeFileSync(SCHEMA_PATH, manifestJsonSchema());
  process.stdout.write(`wrote ${SCHEMA_PATH}\n`);
}
