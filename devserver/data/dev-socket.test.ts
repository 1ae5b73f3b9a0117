import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { devDatabasePort, serveDatabase, serveDevDatabase, type DatabaseSocket } from './dev-socket.js';
import { lockHolder } from './lock-file.js';
import { devDatabaseDir, openDatabase } from './open-database.js';
import { openPglite } from './pglite-client.js';
import type { SqlClient } from './sql-client.js';

type Pglite = Awaited<ReturnType<typeof openPglite>>;

let host: Pglite;
let socket: DatabaseSocket;
const clients: pg.Client[] = [];

/** A client as psql or a GUI client connects: its own connection to the served database. */
async function connect(): Promise<pg.Client & { errors: Error[]; notices: string[] }> {
  const client = Object.assign(new pg.Client({ connectionString: socket.url }), {
    errors: [] as Error[],
    notices: [] as string[],
  });
  client.on('error', (error) => client.errors.push(error));
  client.on('notice', (notice) => client.notices.push(notice.message ?? ''));
  clients.push(client);
  await client.connect();
  return client;
}

const bodies = async (db: SqlClient) =>
  (await db.adminTransaction((q) => q('SELECT body FROM notes ORDER BY body'))).map((r) => String(r.body));
const settled = (promise: Promise<unknown>) =>
  Promise.race([
    promise.then(
      () => true,
      () => true,
    ),
    new Promise((r) => setTimeout(() => r(false), 300)),
  ]);

describe('serveDatabase', () => {
  beforeEach(async () => {
    host = await openPglite(null);
    await host.adminTransaction((q) => q('CREATE TABLE notes (body text NOT NULL)'));
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.end().catch(() => {})));
    await socket?.close();
    await host.close();
  });

  it('serves the PGlite the host uses: each side reads what the other wrote', async () => {
    socket = await serveDatabase(() => host.pglite, { port: 0 });
    expect(socket.url).toBe(`postgres://postgres@127.0.0.1:${socket.port}/postgres`);
    await host.adminTransaction((q) => q("INSERT INTO notes VALUES ('from the host')"));
    const client = await connect();
    expect((await client.query('SELECT body FROM notes')).rows).toEqual([{ body: 'from the host' }]);
    await client.query('INSERT INTO notes VALUES ($1)', ['from psql']);
    expect(await bodies(host)).toEqual(['from psql', 'from the host']);
  });

  it("runs a client's transaction and the host's one after the other, never one inside the other", async () => {
    socket = await serveDatabase(() => host.pglite, { port: 0 });
    const client = await connect();
    await client.query('BEGIN');
    await client.query("INSERT INTO notes VALUES ('kept by psql')");
    // The host's transaction waits for the client's to end instead of running inside it...
    const hostTx = host.adminTransaction(async (q) => {
      await q("INSERT INTO notes VALUES ('rolled back by the host')");
      throw new Error('the host changes its mind');
    });
    expect(await settled(hostTx)).toBe(false);
    await client.query('COMMIT');
    await expect(hostTx).rejects.toThrow('the host changes its mind');
    // ...so its rollback takes only its own row, and the client's commit only the client's.
    expect(await bodies(host)).toEqual(['kept by psql']);

    // The other way round: a client's statement waits for the host's transaction to end.
    let finish!: () => void;
    const hostHolds = host.adminTransaction(async (q) => {
      await q("INSERT INTO notes VALUES ('rolled back again')");
      await new Promise<void>((r) => (finish = r));
      throw new Error('rolled back');
    });
    await new Promise((r) => setTimeout(r, 50));
    const insert = client.query("INSERT INTO notes VALUES ('after the host')");
    expect(await settled(insert)).toBe(false);
    finish();
    await expect(hostHolds).rejects.toThrow('rolled back');
    await insert;
    expect(await bodies(host)).toEqual(['after the host', 'kept by psql']);
  });

  it('ends a client that idles inside a transaction, rolls it back, and the host goes on', async () => {
    socket = await serveDatabase(() => host.pglite, { port: 0, idleInTransactionMs: 300 });
    const client = await connect();
    await client.query('BEGIN');
    await client.query("INSERT INTO notes VALUES ('never committed')");
    const started = Date.now();
    await host.adminTransaction((q) => q("INSERT INTO notes VALUES ('the host')"));
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(await bodies(host)).toEqual(['the host']);
    await expect.poll(() => client.errors.map((e) => e.message).join()).toMatch(/idle-in-transaction timeout/);
    await expect(client.query('SELECT 1')).rejects.toThrow(/not queryable|terminated/);
  });

  it("keeps each client's SET and SET ROLE to itself: the host and other clients keep their own", async () => {
    await host.adminTransaction((q) => q('CREATE ROLE reader NOLOGIN'));
    socket = await serveDatabase(() => host.pglite, { port: 0 });
    const first = await connect();
    await first.query("SET search_path TO somewhere; SET ROLE reader; SET application_name = 'first'");
    const second = await connect();
    const who =
      "SELECT current_user AS user, current_setting('search_path') AS path, current_setting('application_name') AS app";
    expect((await second.query(who)).rows).toEqual([{ user: 'postgres', path: 'public', app: '' }]);
    expect((await host.adminTransaction((q) => q(who)))[0]).toEqual({ user: 'postgres', path: 'public', app: '' });
    expect((await first.query(who)).rows).toEqual([{ user: 'reader', path: 'somewhere', app: 'first' }]);
    await first.end();
    // A client that leaves with a transaction open leaves nothing behind either.
    await second.query("BEGIN; SET ROLE reader; INSERT INTO notes VALUES ('left open')").catch(() => {});
    await second.end();
    expect((await host.adminTransaction((q) => q(who)))[0]).toEqual({ user: 'postgres', path: 'public', app: '' });
    expect(await bodies(host)).toEqual([]);
  });

  it('keeps the timeouts that would end the session at 0, with a warning, and PGlite keeps answering', async () => {
    socket = await serveDatabase(() => host.pglite, { port: 0 });
    const client = await connect();
    await client.query("SET idle_session_timeout = '100ms'");
    await client.query("BEGIN; SET idle_in_transaction_session_timeout = '100ms'");
    await new Promise((r) => setTimeout(r, 400));
    expect((await client.query('SHOW idle_in_transaction_session_timeout')).rows).toEqual([
      { idle_in_transaction_session_timeout: '0' },
    ]);
    await client.query('COMMIT');
    await new Promise((r) => setTimeout(r, 400));
    expect((await client.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    expect(await bodies(host)).toEqual([]);
    expect(client.notices.filter((n) => /cannot be used on the dev database/.test(n))).toHaveLength(2);
  });

  it('serves many clients at once beside the host, with parameters and transactions, losing nothing', async () => {
    socket = await serveDatabase(() => host.pglite, { port: 0 });
    const writers = await Promise.all([1, 2, 3, 4].map(() => connect()));
    const work = writers.map(async (client, n) => {
      for (let i = 0; i < 10; i++) {
        await client.query('BEGIN');
        await client.query('INSERT INTO notes VALUES ($1)', [`client ${n} row ${i}`]);
        // Clients side by side end their transactions differently: a mix-up would show in the count.
        await client.query((i + n) % 2 ? 'COMMIT' : 'ROLLBACK');
      }
    });
    const hostWork = Array.from({ length: 10 }, (_, i) =>
      host.adminTransaction(async (q) => {
        await q('INSERT INTO notes VALUES ($1)', [`host ${i}`]);
        return q('SELECT count(*) FROM notes WHERE body = $1', [`host ${i}`]);
      }),
    );
    await Promise.all([...work, ...hostWork]);
    const committed = [0, 1, 2, 3].flatMap((n) =>
      Array.from({ length: 10 }, (_, i) => i).flatMap((i) => ((i + n) % 2 ? [`client ${n} row ${i}`] : [])),
    );
    const rows = await bodies(host);
    expect(rows.filter((b) => b.startsWith('client'))).toEqual(committed.sort());
    expect(rows.filter((b) => b.startsWith('host'))).toHaveLength(10);
  });

  it('reports DDL once a burst of it settles, and never plain reads and writes', async () => {
    let changes = 0;
    socket = await serveDatabase(() => host.pglite, { port: 0, onSchemaChange: () => changes++ });
    const client = await connect();
    await client.query("INSERT INTO notes VALUES ('a'); SELECT * FROM notes");
    await new Promise((r) => setTimeout(r, 300));
    expect(changes).toBe(0);
    await client.query('CREATE TABLE extra (id int)');
    await client.query('ALTER TABLE extra ADD COLUMN name text');
    await client.query('DROP TABLE extra');
    await expect.poll(() => changes).toBe(1);
  });

  it('takes the next port when the one asked for is taken, and closing ends every connection', async () => {
    const blocker = createServer().listen(0, '127.0.0.1');
    await new Promise((r) => blocker.once('listening', r));
    const taken = (blocker.address() as AddressInfo).port;
    try {
      socket = await serveDatabase(() => host.pglite, { port: taken });
      expect(socket.port).toBeGreaterThan(taken);
      const client = await connect();
      await client.query('BEGIN');
      await socket.close();
      await expect.poll(() => client.errors.map((e) => e.message).join()).toMatch(/dev database is closing/);
      // The open transaction rolled back and PGlite is free for the host.
      expect(await bodies(host)).toEqual([]);
    } finally {
      blocker.close();
    }
  });

  it('refuses a connection with a clear message while the database is not open', async () => {
    socket = await serveDatabase(() => undefined, { port: 0 });
    await expect(connect()).rejects.toThrow(/the dev database is not open/);
  });
});

describe('serveDevDatabase', () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'favn-dev-socket-'));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it("serves the repo's .favn/db as this process opened it, and says where in its lock file", async () => {
    const db = await openDatabase(root, {});
    const dev = await serveDevDatabase(root, { port: 0 });
    try {
      expect(lockHolder(devDatabaseDir(root))).toMatchObject({ pid: process.pid, port: dev.port });
      const client = new pg.Client({ connectionString: dev.url });
      await client.connect();
      await client.query('CREATE TABLE t (x int); INSERT INTO t VALUES (7)');
      await client.end();
      expect(await db.adminTransaction((q) => q('SELECT x FROM t'))).toEqual([{ x: 7 }]);
      await expect(openDatabase(root, {})).rejects.toThrow(`serves the database on 127.0.0.1:${dev.port}`);
    } finally {
      await dev.close();
    }
    expect(JSON.parse(await readFile(`${devDatabaseDir(root)}.lock`, 'utf8'))).not.toHaveProperty('port');
    await db.close();
  });
});

describe('devDatabasePort', () => {
  it('reads FAVN_DB_PORT: a port, 0 or off for none, 5433 by default, none with DATABASE_URL', () => {
    expect(devDatabasePort({})).toBe(5433);
    expect(devDatabasePort({ FAVN_DB_PORT: '6543' })).toBe(6543);
    expect(devDatabasePort({ FAVN_DB_PORT: 'off' })).toBeNull();
    expect(devDatabasePort({ FAVN_DB_PORT: '0' })).toBeNull();
    expect(devDatabasePort({ DATABASE_URL: 'postgres://db/app' })).toBeNull();
    expect(() => devDatabasePort({ FAVN_DB_PORT: 'five' })).toThrow(/FAVN_DB_PORT must be a port/);
  });
});
