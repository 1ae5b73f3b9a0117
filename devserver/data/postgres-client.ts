import type pg from 'pg';
import { pgModule } from '../common/load-on-use.js';
import { setRoleSql, type QueryFn, type Row, type SqlClient } from './sql-client.js';
import { POSTGRES_TRANSACTION_TIMEOUT_MS, TransactionBudget } from './transaction-budget.js';

/**
 * A real PostgreSQL server (`DATABASE_URL`), through a connection pool. The connecting user
 * must be able to create roles and `SET ROLE` to them (a superuser, or a role with CREATEROLE
 * that is granted the feature roles). A feature transaction may hold its connection for
 * `transactionTimeoutMs` (default 5 s); then it is rolled back and the connection goes back.
 *
 * @example
 * const db = await openPostgres(process.env.DATABASE_URL)
 */
export async function openPostgres(
  connectionString: string,
  options: { max?: number; transactionTimeoutMs?: number } = {},
): Promise<SqlClient> {
  const transactionTimeoutMs = options.transactionTimeoutMs ?? POSTGRES_TRANSACTION_TIMEOUT_MS;
  const { Pool, types } = pgModule();
  const pool = new Pool({
    connectionString,
    max: options.max ?? 10,
    types: {
      getTypeParser: (oid: number, format?: string) =>
        oid === 20 ? Number : types.getTypeParser(oid, format as 'text'),
    } as pg.CustomTypesConfig,
  });
  // An idle pooled connection that the server ends (restart, shutdown) is dropped by the pool and
  // replaced on next use; without a listener its 'error' event would end the host process.
  pool.on('error', () => {});
  // Fail at start-up, with the server's own message, rather than on the first call.
  const probe = await pool.connect();
  probe.release();

  async function inTransaction<T>(
    begin: string,
    fn: (q: QueryFn) => Promise<T>,
    budget?: TransactionBudget,
  ): Promise<T> {
    const client = await pool.connect();
    let broken: Error | undefined;
    try {
      budget?.start();
      await client.query(begin);
      const query: QueryFn = async (text, values) => (await client.query<Row>(text, values as unknown[])).rows;
      const result = await (budget ? budget.run(fn, query) : fn(query));
      await client.query('COMMIT');
      return result;
    } catch (error) {
      // pg queues this behind a statement still running, which statement_timeout ends in time.
      await client.query('ROLLBACK').catch((rollbackError: Error) => (broken = rollbackError));
      throw error;
    } finally {
      // A connection that could not roll back is closed, never handed to the next transaction.
      client.release(broken);
    }
  }

  const url = new URL(connectionString);
  url.password = '';
  return {
    engine: 'postgres',
    location: url.toString(),
    transactionTimeoutMs,
    transaction(role, fn, opts = {}) {
      const budget = new TransactionBudget(opts.timeoutMs ?? transactionTimeoutMs, opts);
      // One round trip for BEGIN, the role and the statement limit: the simple protocol takes all.
      // statement_timeout ends a statement that would outlive the budget (the timer cannot).
      const limit = `SET LOCAL statement_timeout = ${Math.ceil(budget.timeoutMs)}`;
      const begin = `BEGIN; ${setRoleSql(role, opts.readOnly ?? false)}; ${limit}`;
      return budget.settle(inTransaction(begin, fn, budget));
    },
    adminTransaction: (fn) => inTransaction('BEGIN', fn),
    close: () => pool.end(),
  };
}
