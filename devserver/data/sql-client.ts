import type { TransactionTimeoutError } from './transaction-timeout-error.js';

/** A result row. */
export type Row = Record<string, unknown>;

/** Runs one parameterized statement inside the current transaction. */
export type QueryFn = (text: string, values?: readonly unknown[]) => Promise<Row[]>;

/** How one feature transaction runs. */
export interface TransactionOptions {
  /** Refuse writes. */
  readOnly?: boolean;
  /** Most ms the transaction may hold the database (default: the client's `transactionTimeoutMs`). */
  timeoutMs?: number;
  /**
   * Ends the transaction early: when it aborts, an open transaction rolls back at once, and a
   * transaction still waiting for the database never starts. It fails with the abort reason.
   */
  signal?: AbortSignal;
  /**
   * Called the moment the budget runs out, once the rollback is under way. The returned promise
   * settles only when `fn` has settled too, so a caller that must answer at once listens here.
   */
  onExpire?: (error: TransactionTimeoutError) => void;
  /**
   * Whose write this is: the caller's tenant, so live queries re-run for that installation only.
   * Absent: not a call's (every tenant's subscriptions re-run).
   */
  tenantId?: string | null;
}

/**
 * The database as the host uses it. Feature SQL only ever runs through `transaction`, under the
 * feature's own role; `admin` is for migrations.
 */
export interface SqlClient {
  readonly engine: 'pglite' | 'postgres';
  /** Where the data lives, for messages (`.favn/db`, or the server without password). */
  readonly location: string;
  /** Default budget of `transaction` in ms: the engine's default unless the client was opened with one. */
  readonly transactionTimeoutMs: number;
  /**
   * One transaction as `role` (`SET LOCAL ROLE`); `readOnly` refuses writes. Rolls back on throw,
   * and when it holds the database longer than its budget (waiting for the database does not
   * count): then it fails with a `TransactionTimeoutError` (503) and its `query` throws from then on.
   */
  transaction<T>(role: string, fn: (query: QueryFn) => Promise<T>, options?: TransactionOptions): Promise<T>;
  /**
   * One statement in a transaction of its own, as `role`: what `transaction(role, (q) => q(text,
   * values), options)` does, in one round trip where the database allows (PGlite). Optional.
   */
  statement?(role: string, text: string, values: readonly unknown[], options?: TransactionOptions): Promise<Row[]>;
  /** One transaction as the connecting user, for DDL and role set-up (no budget: the host's own work). */
  adminTransaction<T>(fn: (query: QueryFn) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** `SET LOCAL ROLE` for an identifier that the schema model already checked. */
export function setRoleSql(role: string, readOnly: boolean): string {
  if (!/^ext_[a-z0-9_]{1,63}$/.test(role)) throw new Error(`Refusing role ${JSON.stringify(role)}: this is a bug`);
  return `${readOnly ? 'SET TRANSACTION READ ONLY; ' : ''}SET LOCAL ROLE "${role}"`;
}
