import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseEnv } from 'node:util';

/**
 * `.env.local` of a feature repo: the dev secret store (`ctx.secrets`) and where `DATABASE_URL`
 * may be set. Never bundled. Missing file: no entries.
 *
 * @example
 * readEnvLocal('/repo').API_KEY
 */
export function readEnvLocal(root: string): Record<string, string> {
  try {
    return parseEnv(readFileSync(path.join(root, '.env.local'), 'utf8')) as Record<string, string>;
  } catch {
    return {};
  }
}
