import type { Socket } from 'node:net';
import type { PGlite } from '@electric-sql/pglite';
import {
  holdTransactionLock,
  runSql,
  settingsSql,
  unsupportedTimeoutsWarning,
  zeroTimeouts,
} from './dev-socket-settings.js';
import { BackendScanner, errorMessage, MESSAGE, STARTUP_CODE, SYNC_MESSAGE } from './dev-socket-wire.js';

/** What every connection of one socket server shares. */
export interface SessionSettings {
  /** The database, looked up when a client connects; `undefined` while it is not open. */
  database: () => PGlite | undefined;
  /** How long a client may hold an open transaction without sending anything. */
  idleInTransactionMs: number;
  /** Told when a client's statements ran DDL (`CREATE`, `ALTER`, `DROP`), once they are done. */
  onSchemaChange: () => void;
  /** Told when a client's turn ends having changed rows (live queries re-run). */
  onWrite?: () => void;
}

/** A client's DDL (a reload of the host's table model follows it). */
const DDL_TAG = /^(CREATE|ALTER|DROP) /;
/** Command tags of statements that change rows. */
const WRITE_TAG = /^(INSERT|UPDATE|DELETE|MERGE|COPY|TRUNCATE)\b/;

/**
 * One client connection of the dev database socket. Its messages go to PGlite as they are, but a
 * client takes PGlite's transaction lock (the lock the host's own transactions take) for a whole
 * turn, from its first message until PGlite is idle again outside a transaction: another client
 * and the host wait meanwhile, and never run inside its transaction nor it inside theirs.
 */
export class SocketSession {
  /** Settles once the connection is closed and PGlite is left as the host needs it. */
  readonly closed: Promise<void>;
  #socket: Socket;
  #settings: SessionSettings;
  #db: PGlite | null = null;
  #input = Buffer.alloc(0);
  #started = false;
  #pending: Uint8Array[] = [];
  #pump: Promise<void> = Promise.resolve();
  #pumping = false;
  #release: (() => void) | null = null;
  #restore = '';
  #ranDdl = false;
  #wrote = false;
  #idle: NodeJS.Timeout | null = null;
  #ending = false;
  #ended!: () => void;

  constructor(socket: Socket, settings: SessionSettings) {
    this.#socket = socket;
    this.#settings = settings;
    this.closed = new Promise((resolve) => (this.#ended = resolve));
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.#receive(chunk));
    socket.on('error', () => {});
    socket.on('close', () => void this.end());
  }

  /** Ends the connection (`FATAL` with `message` first, if given): an open transaction rolls back. */
  async end(fatal?: { code: string; message: string }): Promise<void> {
    if (!this.#ending) {
      this.#ending = true;
      this.#pending = [];
      this.#clearIdle();
      if (fatal && this.#socket.writable) this.#socket.write(errorMessage('FATAL', fatal.code, fatal.message));
      // Closed once the FATAL is written, whatever the client does with its side.
      this.#socket.destroySoon();
      void this.#pump.then(() => this.#leave()).finally(this.#ended);
    }
    await this.closed;
  }

  #receive(chunk: Buffer): void {
    if (this.#ending) return;
    this.#input = Buffer.concat([this.#input, chunk]);
    for (;;) {
      const message = this.#started ? this.#nextMessage() : this.#nextStartup();
      if (!message) break;
      if (message[0] === MESSAGE.terminate && this.#started) return void this.end();
      this.#pending.push(message);
    }
    if (!this.#pumping && this.#pending.length) {
      this.#pumping = true;
      this.#clearIdle();
      this.#pump = this.#drain().finally(() => {
        this.#pumping = false;
        if (this.#release && !this.#ending) this.#armIdle();
      });
    }
  }

  /** The startup phase: answers SSL and GSS encryption requests with "no", returns the startup message. */
  #nextStartup(): Uint8Array | null {
    if (this.#input.length < 8) return null;
    const length = this.#input.readInt32BE(0);
    const code = this.#input.readInt32BE(4);
    if (length === 8 && (code === STARTUP_CODE.ssl || code === STARTUP_CODE.gssEncryption)) {
      this.#input = this.#input.subarray(8);
      this.#socket.write('N');
      return this.#nextStartup();
    }
    if (code === STARTUP_CODE.cancel) {
      // PGlite has no backend to interrupt: a statement always runs to its end.
      void this.end();
      return null;
    }
    if (code !== STARTUP_CODE.protocol3 || length < 8 || length > 10_000) {
      void this.end({ code: '08P01', message: 'unsupported frontend protocol: the dev database speaks protocol 3.0' });
      return null;
    }
    if (this.#input.length < length) return null;
    const db = this.#settings.database();
    if (!db || db.closed) {
      void this.end({
        code: '57P03',
        message: 'the dev database is not open: the dev server opens it once the feature has a server/schema.ts',
      });
      return null;
    }
    this.#db = db;
    this.#started = true;
    return this.#take(length);
  }

  #nextMessage(): Uint8Array | null {
    if (this.#input.length < 5) return null;
    const length = this.#input.readInt32BE(1);
    if (length < 4) {
      void this.end({ code: '08P01', message: `invalid message length ${length}` });
      return null;
    }
    return this.#input.length < 1 + length ? null : this.#take(1 + length);
  }

  #take(length: number): Uint8Array {
    const message = Uint8Array.from(this.#input.subarray(0, length));
    this.#input = this.#input.subarray(length);
    return message;
  }

  async #drain(): Promise<void> {
    try {
      for (let message = this.#pending.shift(); message && !this.#ending; message = this.#pending.shift())
        await this.#run(message);
    } catch (error) {
      void this.end({ code: '58000', message: `the dev database failed: ${(error as Error).message}` });
    }
  }

  /** Runs one message in this client's turn; the turn ends when PGlite is idle outside a transaction. */
  async #run(message: Uint8Array): Promise<void> {
    const db = this.#db!;
    if (!this.#release) {
      this.#release = await holdTransactionLock(db);
      if (this.#ending) return this.#endTurn();
      // Before the client's first statement: the session is still as the host runs it.
      await settingsSql(db);
      // A role dropped meanwhile fails the restore: the client goes on with the defaults.
      if (this.#restore) await runSql(db, this.#restore).catch(() => {});
    }
    const scan = new BackendScanner();
    let streaming = true;
    await db.runExclusive(() =>
      db.execProtocolRawStream(message, {
        onRawData: (data) => {
          // PGlite keeps this callback after the call; what it would send later is not ours.
          if (!streaming) return;
          scan.push(data);
          if (this.#socket.writable) this.#socket.write(Buffer.from(data));
        },
      }),
    );
    streaming = false;
    if (scan.tags.some((tag) => DDL_TAG.test(tag))) this.#ranDdl = true;
    if (scan.tags.some((tag) => WRITE_TAG.test(tag))) this.#wrote = true;
    // Only once PGlite waits for the client's next command (never inside an extended-protocol
    // sequence, whose unnamed statement a query of ours would replace), and never in a failed
    // transaction, which refuses every statement until it ends.
    if (scan.status === null || scan.status === 'E') return;
    // PGlite is one session: what a client SETs would hold for the host and the other clients too.
    // At the end of its turn its settings are put aside, and restored at the start of its next one.
    const sql = await settingsSql(db);
    const [restore, unsupported] = (await runSql(db, sql.save))[0] ?? [];
    if (unsupported) {
      this.#socket.write(errorMessage('WARNING', '0A000', unsupportedTimeoutsWarning(unsupported)));
      if (scan.status === 'T') await runSql(db, zeroTimeouts(unsupported));
    }
    if (scan.status !== 'I') return;
    this.#restore = restore ?? '';
    if (this.#restore || unsupported) await runSql(db, sql.reset);
    this.#endTurn();
  }

  #endTurn(): void {
    this.#release?.();
    this.#release = null;
    if (this.#ranDdl) this.#settings.onSchemaChange();
    // A turn that wrote and then rolled back tells too: its queries re-run and find nothing new.
    if (this.#wrote || this.#ranDdl) this.#settings.onWrite?.();
    this.#ranDdl = false;
    this.#wrote = false;
  }

  /** After the connection closed: rolls back what it left open and hands PGlite back clean. */
  async #leave(): Promise<void> {
    const db = this.#db;
    if (!this.#release || !db) return;
    try {
      await runSql(db, SYNC_MESSAGE);
      await runSql(db, 'ROLLBACK');
      await runSql(db, (await settingsSql(db)).reset);
    } catch {
      // A database that closed meanwhile has nothing left to hand back.
    } finally {
      this.#endTurn();
    }
  }

  #armIdle(): void {
    const ms = this.#settings.idleInTransactionMs;
    this.#idle = setTimeout(() => {
      const message =
        `terminating connection due to idle-in-transaction timeout: the dev database runs one transaction ` +
        `at a time, and the dev server waited ${ms} ms for this one`;
      void this.end({ code: '25P03', message });
    }, ms);
  }

  #clearIdle(): void {
    if (this.#idle) clearTimeout(this.#idle);
    this.#idle = null;
  }
}
