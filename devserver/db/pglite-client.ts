import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { acquireLock } from './lock-file.js';
import { setRoleSql, type QueryFn, type Row, type SqlClient } from './sql-client.js';

// int8 comes back as a string by default; the schema's v.int() is a JS number.
const PARSERS = { 20: (value: string) => Number(value) };

/**
 * PGlite, the dev database: in memory, or persisted in a folder that a lock file keeps to one
 * host at a time. PGlite runs one transaction at a time; callers must not hold one while waiting
 * on anything slow.
 *
 * @example
 * const db = await openPglite('/repo/.favn/db')
 */
export async function openPglite(dataDir: string | null): Promise<SqlClient & { readonly pglite: PGlite }> {
  if (dataDir) mkdirSync(path.dirname(dataDir), { recursive: true });
  const release = dataDir ? acquireLock(dataDir) : () => {};
  let db: PGlite;
  try {
    db = new PGlite(dataDir ?? undefined, { parsers: PARSERS });
    await db.waitReady;
  } catch (error) {
    release();
    throw error;
  }
  const wrap =
    (q: { query: PGlite['query'] }): QueryFn =>
    async (text, values) =>
      (await q.query<Row>(text, values as unknown[])).rows;
  return {
    engine: 'pglite',
    location: dataDir ?? 'memory',
    pglite: db,
    transaction: (role, fn, options = {}) =>
      db.transaction(async (tx) => {
        await tx.exec(setRoleSql(role, options.readOnly ?? false));
        return fn(wrap(tx));
      }),
    adminTransaction: (fn) => db.transaction((tx) => fn(wrap(tx))),
    async close() {
      try {
        await db.close();
      } finally {
        release();
      }
    },
  };
}
