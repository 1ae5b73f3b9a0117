import { statSync } from 'node:fs';
import path from 'node:path';
import { CLIENT_TYPES_DIR, writeClientTypes } from '../scan/client-types.js';

/**
 * `favn types`: writes `.favn/types/` (what `vite` and `vite build` write on start), for a fresh
 * checkout's `tsc -b`. Exits 0, and prints why an export keeps its server signature.
 */
export async function runTypes(options: { root: string; schema?: string }): Promise<number> {
  const root = path.resolve(options.root);
  if (!statSync(root, { throwIfNoEntry: false })?.isDirectory()) {
    process.stderr.write(`favn types: ${options.root} is not a folder (--root names the feature's folder)\n`);
    return 1;
  }
  const result = await writeClientTypes(root, { schema: options.schema, force: true });
  for (const warning of result.warnings) process.stderr.write(`favn types: ${warning}\n`);
  const count = result.functions.length;
  process.stdout.write(
    `favn types: ${CLIENT_TYPES_DIR}/ ${result.changed ? 'written' : 'up to date'} ` +
      `(${count} plain function${count === 1 ? '' : 's'}${result.schema ? ', the schema' : ''})\n`,
  );
  return 0;
}
