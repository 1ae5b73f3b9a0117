import { createServer, type AddressInfo, type Server } from 'node:net';
import type { PGlite } from '@electric-sql/pglite';
import pc from 'picocolors';
import { UsageError } from '../common/usage-error.js';
import { SocketSession } from './dev-socket-session.js';
import { announcePort } from './lock-file.js';
import { devDatabaseDir, pgliteOpenAt } from './open-database.js';
import { schemaNameFor } from './table-model.js';

/** The port the dev database is served on unless `FAVN_DB_PORT` says otherwise (taken: the next free one). */
export const DEV_DATABASE_PORT = 5433;
/**
 * How long a client may keep a transaction open without sending anything before it is ended: under
 * the 10 s a server function call may take by default, so a call that waits behind it still answers.
 */
export const IDLE_IN_TRANSACTION_MS = 5_000;
/** Loopback only: the dev database has no password. */
const HOST = '127.0.0.1';
// DDL comes in bursts (favn db reset drops, then migrates): one reload of the host's model after it.
const SCHEMA_CHANGE_SETTLE_MS = 100;

export interface DatabaseSocketOptions {
  /** The port to try first; when it is taken the next ones are tried, as Vite does for its own. */
  port: number;
  /** Default `IDLE_IN_TRANSACTION_MS`. */
  idleInTransactionMs?: number;
  /** Told (once a burst of DDL settles) that a client created, altered or dropped something. */
  onSchemaChange?: () => void;
  /** Told when a client's statement or transaction changed rows (live queries re-run). */
  onWrite?: () => void;
}

/** A PGlite database served over the PostgreSQL protocol on loopback. */
export interface DatabaseSocket {
  readonly port: number;
  /** `postgres://postgres@127.0.0.1:<port>/postgres` */
  readonly url: string;
  /** Stops listening and ends every connection (open transactions roll back). */
  close(): Promise<void>;
}

/**
 * Serves a PGlite database over the PostgreSQL wire protocol on 127.0.0.1, to any number of
 * clients (psql, GUI clients, the `pg` driver). Each client takes PGlite's transaction lock for a
 * turn (a statement, or a transaction from BEGIN to its end), so clients and the host's own
 * transactions run one after the other, never inside each other; a client idle inside a
 * transaction for `idleInTransactionMs` is disconnected and its transaction rolled back.
 *
 * @example
 * const socket = await serveDatabase(() => pglite, { port: 5433 })
 * console.log(socket.url) // postgres://postgres@127.0.0.1:5433/postgres
 */
export async function serveDatabase(
  database: () => PGlite | undefined,
  options: DatabaseSocketOptions,
): Promise<DatabaseSocket> {
  const sessions = new Set<SocketSession>();
  let settle: NodeJS.Timeout | undefined;
  const settings = {
    database,
    idleInTransactionMs: options.idleInTransactionMs ?? IDLE_IN_TRANSACTION_MS,
    onWrite: () => options.onWrite?.(),
    onSchemaChange: () => {
      clearTimeout(settle);
      settle = setTimeout(() => options.onSchemaChange?.(), SCHEMA_CHANGE_SETTLE_MS);
    },
  };
  const server = createServer((socket) => {
    const session = new SocketSession(socket, settings);
    sessions.add(session);
    void session.closed.then(() => sessions.delete(session));
  });
  const port = await listenFrom(server, options.port);
  let closing: Promise<void> | undefined;
  return {
    port,
    url: databaseUrl(port),
    close: () =>
      (closing ??= (async () => {
        clearTimeout(settle);
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        const shutdown = { code: '57P01', message: 'terminating connection: the dev database is closing' };
        await Promise.all([...sessions].map((session) => session.end(shutdown)));
        await stopped;
      })()),
  };
}

/**
 * The URL of a database served on a port of 127.0.0.1 (user postgres, no password).
 *
 * @example
 * databaseUrl(5433) // 'postgres://postgres@127.0.0.1:5433/postgres'
 */
export function databaseUrl(port: number): string {
  return `postgres://postgres@${HOST}:${port}/postgres`;
}

/** Dev servers of this process by PGlite folder: a restarted dev server takes over its predecessor's port. */
const serving = new Map<string, DatabaseSocket>();

/**
 * Serves the PGlite folder of a feature repo (`<root>/.favn/db`), as this process has it open
 * through `openDatabase`, and records the port in its lock file so that `favn db` commands connect
 * there instead of refusing.
 *
 * @example
 * const socket = await serveDevDatabase('/repo', { port: 5433, onSchemaChange: () => reload() })
 */
export async function serveDevDatabase(root: string, options: DatabaseSocketOptions): Promise<DatabaseSocket> {
  const dataDir = devDatabaseDir(root);
  await serving.get(dataDir)?.close();
  const socket = await serveDatabase(() => pgliteOpenAt(dataDir), options);
  serving.set(dataDir, socket);
  announcePort(dataDir, socket.port);
  return {
    ...socket,
    async close() {
      if (serving.get(dataDir) === socket) {
        serving.delete(dataDir);
        announcePort(dataDir, null);
      }
      await socket.close();
    },
  };
}

/**
 * The port `vite` serves the dev database on: `FAVN_DB_PORT` (a port, or `0`/`off` for none),
 * default 5433; none when `DATABASE_URL` points the feature at a PostgreSQL server.
 *
 * @example
 * devDatabasePort({ FAVN_DB_PORT: 'off' }) // null
 */
export function devDatabasePort(env: Readonly<Record<string, string | undefined>>): number | null {
  if (env.DATABASE_URL) return null;
  const value = env.FAVN_DB_PORT?.trim().toLowerCase();
  if (value === undefined || value === '') return DEV_DATABASE_PORT;
  if (value === '0' || value === 'off' || value === 'false') return null;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new UsageError(
      `FAVN_DB_PORT must be a port (1-65535) to serve the dev database on, ` +
        `or 0/off to not serve it (got "${env.FAVN_DB_PORT}")`,
    );
  }
  return port;
}

/**
 * The line `vite` prints under its own URLs.
 *
 * @example
 * devDatabaseBanner(socket.url, 'feature-crud')
 * // '  ➜  Database: postgres://postgres@127.0.0.1:5433/postgres (tables in schema ext_feature_crud)'
 */
export function devDatabaseBanner(url: string, featureId: string): string {
  const schema = pc.dim(`(tables in schema ${schemaNameFor(featureId)})`);
  return `  ${pc.green('➜')}  ${pc.bold('Database')}: ${pc.cyan(url)} ${schema}`;
}

/** Listens on the first free port from `port` up. */
function listenFrom(server: Server, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EADDRINUSE' || port >= 65535) return reject(error);
      server.listen(++port, HOST);
    };
    server.on('error', onError);
    server.once('listening', () => {
      server.off('error', onError);
      resolve((server.address() as AddressInfo).port);
    });
    server.listen(port, HOST);
  });
}
