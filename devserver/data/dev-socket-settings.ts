/**
 * PGlite is one PostgreSQL session, shared by the host and every client of the dev database
 * socket: its lock, and what a client may leave in it, are handled here.
 */
import type { PGlite } from '@electric-sql/pglite';
import { queryMessage } from './dev-socket-wire.js';

// Timeouts that end a session: PGlite cannot end its only session and stops answering (measured:
// the whole process hangs once one fires), so they stay 0 and the socket ends idle transactions itself.
const UNSUPPORTED = ['idle_in_transaction_session_timeout', 'idle_session_timeout', 'transaction_timeout'];

/** SQL that saves and resets a client's settings, per database. */
export interface SettingsSql {
  /**
   * One row: the SQL that restores the client's `SET`s, `SET ROLE` and `SET SESSION AUTHORIZATION`
   * (null when it changed nothing), and the unsupported timeouts it set (null when none).
   */
  save: string;
  /** Back to the session the host runs with. */
  reset: string;
}

const cache = new WeakMap<PGlite, SettingsSql>();

/**
 * The save and reset SQL of `db`, for the session user the host runs as. Call it first while the
 * session is still as the host left it (before any client's statement ran).
 *
 * @example
 * const { save, reset } = await settingsSql(db)
 */
export async function settingsSql(db: PGlite): Promise<SettingsSql> {
  let sql = cache.get(db);
  if (!sql) {
    const [[user] = []] = await runSql(db, 'SELECT session_user');
    const host = String(user);
    const hostUser = quoteLiteral(host);
    const unsupported = `ARRAY[${UNSUPPORTED.map(quoteLiteral).join(', ')}]`;
    const save = `SELECT
      (SELECT string_agg(statement, '; ' ORDER BY n) FROM (
        SELECT 1 AS n, format('SELECT set_config(%L, %L, false)', name, setting) AS statement FROM pg_settings
          WHERE source = 'session' AND name <> ALL (${unsupported})
        UNION ALL SELECT 2, format('SET SESSION AUTHORIZATION %I', session_user) WHERE session_user <> ${hostUser}
        UNION ALL SELECT 3, format('SET ROLE %I', current_setting('role')) WHERE current_setting('role') <> 'none'
      ) s),
      (SELECT string_agg(name, ', ') FROM pg_settings WHERE name = ANY (${unsupported}) AND setting <> '0')`;
    sql = { save, reset: `SET SESSION AUTHORIZATION ${quoteIdent(host)}; RESET ROLE; RESET ALL` };
    cache.set(db, sql);
  }
  return sql;
}

/** `SET … = 0` for the unsupported timeouts a save reported. */
export function zeroTimeouts(names: string): string {
  return names
    .split(', ')
    .map((name) => `SET ${quoteIdent(name)} = 0`)
    .join('; ');
}

/** The warning a client gets when it set one of the unsupported timeouts. */
export function unsupportedTimeoutsWarning(names: string): string {
  return (
    `${names} cannot be used on the dev database (PGlite would stop answering); it stays 0. ` +
    `The dev server ends a transaction left idle instead.`
  );
}

/**
 * Takes PGlite's transaction lock (the one `db.transaction`, `query` and `exec` wait for) and
 * keeps it until the returned function is called.
 *
 * @example
 * const release = await holdTransactionLock(db)
 */
export function holdTransactionLock(db: PGlite): Promise<() => void> {
  return new Promise((granted) => {
    void db._runExclusiveTransaction(() => new Promise<void>((release) => granted(release)));
  });
}

/**
 * Runs SQL (or a raw message) while the caller holds the transaction lock; returns the data rows
 * as text. Throws the database's error.
 *
 * @example
 * const [[user]] = await runSql(db, 'SELECT session_user')
 */
export async function runSql(db: PGlite, sql: string | Uint8Array): Promise<(string | null)[][]> {
  const message = typeof sql === 'string' ? queryMessage(sql) : sql;
  // execProtocolStream, unlike execProtocol, does not hand its output to a client's stream callback
  // that PGlite keeps after execProtocolRawStream.
  const messages = await db.runExclusive(() => db.execProtocolStream(message));
  return messages.flatMap((m) =>
    m.name === 'dataRow' ? [(m as unknown as { fields: (string | null)[] }).fields] : [],
  );
}

function quoteLiteral(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
