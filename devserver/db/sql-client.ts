/** A result row. */
export type Row = Record<string, unknown>;

/** Runs one parameterized statement inside the current transaction. */
export type QueryFn = (text: string, values?: readonly unknown[]) => Promise<Row[]>;

/**
 * The database as the host uses it. Feature SQL only ever runs through `transaction`, under the
 * feature's own role; `admin` is for migrations.
 */
export interface SqlClient {
  readonly engine: 'pglite' | 'postgres';
  /** Where the data lives, for messages (`.favn/db`, or the server without password). */
  readonly location: string;
  /** One transaction as `role` (`SET LOCAL ROLE`); `readOnly` refuses writes. Rolls back on throw. */
  transaction<T>(role: string, fn: (query: QueryFn) => Promise<T>, options?: { readOnly?: boolean }): Promise<T>;
  /** One transaction as the connecting user, for DDL and role set-up. */
  adminTransaction<T>(fn: (query: QueryFn) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** `SET LOCAL ROLE` for an identifier that the schema model already checked. */
export function setRoleSql(role: string, readOnly: boolean): string {
  if (!/^ext_[a-z0-9_]{1,63}$/.test(role)) throw new Error(`Refusing role ${JSON.stringify(role)}: this is a bug`);
  return `${readOnly ? 'SET TRANSACTION READ ONLY; ' : ''}SET LOCAL ROLE "${role}"`;
}
