import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { acquireLock } from './lock-file.js';
import { seedFromTemplate } from './pglite-template.js';
import { isScalarParameter, MAX_PIPELINED_PARAMETERS, pipelinedStatement, rowsOf } from './pglite-pipeline.js';
import { setRoleSql, type QueryFn, type Row, type SqlClient } from './sql-client.js';
import { PGLITE_TRANSACTION_TIMEOUT_MS, TransactionBudget } from './transaction-budget.js';

// int8 comes back as a string by default; the schema's v.int() is a JS number.
const PARSERS = { 20: (value: string) => Number(value) };

/** Marks the settings this module adds to a data folder's `postgresql.conf`. */
const TUNED = '# favn: ';

/**
 * Less shared memory than PostgreSQL's default 128 MB: PGlite clears it on every start, which
 * took 350 of the 870 ms a start of `.favn/db` takes. A dev database is small; an operator who wants
 * more sets it with `ALTER SYSTEM SET shared_buffers` (`postgresql.auto.conf` wins).
 */
function tuneDataDir(dataDir: string): void {
  const file = path.join(dataDir, 'postgresql.conf');
  // A folder initdb has not run in yet is tuned on its next start.
  if (!existsSync(file)) return;
  const text = readFileSync(file, 'utf8');
  if (text.includes(TUNED)) return;
  appendFileSync(file, `\n${TUNED}a quicker start (ALTER SYSTEM SET overrides it)\nshared_buffers = 16MB\n`);
}

/**
 * PGlite, the dev database: in memory, or persisted in a folder that a lock file keeps to one
 * host at a time. PGlite runs one transaction at a time, so a feature transaction may hold it for
 * `transactionTimeoutMs` (default 1 s) at most; then it is rolled back and the next call proceeds.
 *
 * @example
 * const db = await openPglite('/repo/.favn/db')
 */
export async function openPglite(
  dataDir: string | null,
  options: { transactionTimeoutMs?: number } = {},
): Promise<SqlClient & { readonly pglite: PGlite }> {
  const transactionTimeoutMs = options.transactionTimeoutMs ?? PGLITE_TRANSACTION_TIMEOUT_MS;
  if (dataDir) mkdirSync(path.dirname(dataDir), { recursive: true });
  const release = dataDir ? acquireLock(dataDir) : () => {};
  let db: PGlite;
  try {
    // A new folder starts as a copy of the machine's initialized template, not with initdb.
    if (dataDir) {
      await seedFromTemplate(dataDir);
      tuneDataDir(dataDir);
    }
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
  const transaction: SqlClient['transaction'] = (role, fn, opts = {}) => {
    const budget = new TransactionBudget(opts.timeoutMs ?? transactionTimeoutMs, opts);
    return budget.settle(
      db.transaction(async (tx) => {
        // The clock starts once PGlite's lock is ours: time spent queued behind others is not held.
        budget.start();
        await tx.exec(setRoleSql(role, opts.readOnly ?? false));
        // A statement cannot be interrupted here (it runs on this thread; statement_timeout does
        // not fire in PGlite): the budget ends the transaction between statements.
        return budget.run(fn, wrap(tx));
      }),
    );
  };
  return {
    engine: 'pglite',
    location: dataDir ?? 'memory',
    pglite: db,
    transactionTimeoutMs,
    transaction,
    async statement(role, text, values, opts = {}) {
      const readOnly = opts.readOnly ?? false;
      // Parameters PGlite would serialize by their type (arrays, objects, dates), and more of them
      // than one message can count, take the usual path.
      if (values.length > MAX_PIPELINED_PARAMETERS || !values.every(isScalarParameter))
        return transaction(role, (q) => q(text, values), opts);
      const message = pipelinedStatement(`BEGIN; ${setRoleSql(role, readOnly)}`, text, values, 'COMMIT');
      // PGlite's transaction lock first, as db.transaction takes it: never inside another's transaction.
      return db._runExclusiveTransaction(() =>
        db._runExclusiveQuery(async () => {
          opts.signal?.throwIfAborted();
          return rowsOf((await db.execProtocol(message)).messages, db.parsers);
        }),
      );
    },
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
