import path from 'node:path';
import type { PGlite } from '@electric-sql/pglite';
import { openPglite } from './pglite-client.js';
import { openPostgres } from './postgres-client.js';
import type { SqlClient } from './sql-client.js';

// The PGlite folders this process has open, so the dev server can serve the very instance its
// host uses (a second instance on the same folder would corrupt it).
const openHere = new Map<string, PGlite>();

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
  if (url) return openPostgres(url);
  const dataDir = devDatabaseDir(root);
  const client = await openPglite(dataDir);
  openHere.set(dataDir, client.pglite);
  return {
    ...client,
    async close() {
      if (openHere.get(dataDir) === client.pglite) openHere.delete(dataDir);
      await client.close();
    },
  };
}

/**
 * The PGlite folder of a feature repo.
 *
 * @example
 * devDatabaseDir('/repo') // '/repo/.favn/db'
 */
export function devDatabaseDir(root: string): string {
  return path.join(root, '.favn', 'db');
}

/**
 * The PGlite instance this process has open on `dataDir` through `openDatabase`, if any.
 *
 * @example
 * const pglite = pgliteOpenAt(devDatabaseDir('/repo'))
 */
export function pgliteOpenAt(dataDir: string): PGlite | undefined {
  return openHere.get(dataDir);
}
