import pg from 'pg';
import { setRoleSql, type QueryFn, type Row, type SqlClient } from './sql-client.js';

/**
 * A real PostgreSQL server (`DATABASE_URL`), through a connection pool. The connecting user
 * must be able to create roles and `SET ROLE` to them (a superuser, or a role with CREATEROLE
 * that is granted the feature roles).
 *
 * @example
 * const db = await openPostgres(process.env.DATABASE_URL)
 */
export async function openPostgres(connectionString: string, options: { max?: number } = {}): Promise<SqlClient> {
  const pool = new pg.Pool({
    connectionString,
    max: options.max ?? 10,
    types: { getTypeParser: (oid: number, format?: string) => (oid === 20 ? Number : pg.types.getTypeParser(oid, format as 'text')) } as pg.CustomTypesConfig,
  });
  // Fail at start-up, with the server's own message, rather than on the first call.
  const probe = await pool.connect();
  probe.release();

  async function inTransaction<T>(begin: string, fn: (query: QueryFn) => Promise<T>): Promise<T> {
    const client = await pool.connect();
    try {
      await client.query(begin);
      const result = await fn(async (text, values) => (await client.query<Row>(text, values as unknown[])).rows);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      throw error;
    } finally {
      client.release();
    }
  }

  const url = new URL(connectionString);
  url.password = '';
  return {
    engine: 'postgres',
    location: url.toString(),
    // One round trip for BEGIN and the role: the simple protocol takes both statements.
    transaction: (role, fn, opts = {}) => inTransaction(`BEGIN; ${setRoleSql(role, opts.readOnly ?? false)}`, fn),
    adminTransaction: (fn) => inTransaction('BEGIN', fn),
    close: () => pool.end(),
  };
}
