import path from 'node:path';
import { openPglite } from './pglite-client.js';
import { openPostgres } from './postgres-client.js';
import type { SqlClient } from './sql-client.js';

/**
 * The database a host uses: PostgreSQL when `DATABASE_URL` is set (in the environment or the
 * feature's secrets), else PGlite persisted in `<root>/.favn/db`.
 *
 * @example
 * const db = await openDatabase('/repo', { DATABASE_URL: process.env.DATABASE_URL })
 */
export async function openDatabase(
  root: string,
  env: Readonly<Record<string, string | undefined>> = process.env,
): Promise<SqlClient> {
  const url = env.DATABASE_URL;
  return url ? openPostgres(url) : openPglite(path.join(root, '.favn', 'db'));
}
