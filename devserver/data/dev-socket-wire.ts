/**
 * The few PostgreSQL wire-protocol (v3) messages the dev database socket reads and writes itself;
 * everything else passes between the client and PGlite as it is.
 */

/** First int32 of a startup-phase request after its length: what the client asks for. */
export const STARTUP_CODE = { protocol3: 196608, ssl: 80877103, gssEncryption: 80877104, cancel: 80877102 };

/** Message types by their first byte. */
export const MESSAGE = {
  terminate: 0x58, // 'X' from the client
  commandComplete: 0x43, // 'C' from the server
  readyForQuery: 0x5a, // 'Z' from the server
};

/** A simple-protocol `Query` message. */
export function queryMessage(sql: string): Uint8Array {
  const text = Buffer.from(`${sql}\0`);
  const head = Buffer.alloc(5);
  head.write('Q', 0);
  head.writeInt32BE(4 + text.length, 1);
  return Buffer.concat([head, text]);
}

/** A `Sync` message: ends an extended-protocol sequence the client left unfinished. */
export const SYNC_MESSAGE = Uint8Array.of(0x53, 0, 0, 0, 4);

/**
 * An `ErrorResponse` (`severity` ERROR or FATAL) or a `NoticeResponse` (WARNING) with its
 * SQLSTATE, as psql and drivers show them.
 */
export function errorMessage(severity: 'FATAL' | 'ERROR' | 'WARNING', code: string, message: string): Buffer {
  const fields = Buffer.from(`S${severity}\0V${severity}\0C${code}\0M${message}\0\0`);
  const head = Buffer.alloc(5);
  head.write(severity === 'WARNING' ? 'N' : 'E', 0);
  head.writeInt32BE(4 + fields.length, 1);
  return Buffer.concat([head, fields]);
}

/**
 * Follows the server's side of a stream as it is written, chunk by chunk: the command tags it
 * completed and whether its last message is `ReadyForQuery` (and with which transaction status).
 */
export class BackendScanner {
  /** Tags of the `CommandComplete` messages seen (`INSERT 0 1`, `CREATE TABLE`, …). */
  readonly tags: string[] = [];
  /** `I` (idle), `T` (in a transaction) or `E` (failed transaction) when the last message is `ReadyForQuery`. */
  status: 'I' | 'T' | 'E' | null = null;
  #header: number[] = [];
  #type = 0;
  #remaining = -1;
  #body: Buffer[] = [];

  push(chunk: Uint8Array): void {
    let offset = 0;
    while (offset < chunk.length) {
      if (this.#remaining < 0) {
        this.#header.push(chunk[offset++]!);
        if (this.#header.length < 5) continue;
        this.#type = this.#header[0]!;
        this.#remaining = Buffer.from(this.#header).readInt32BE(1) - 4;
        this.#header = [];
        this.#body = [];
      } else {
        const part = chunk.subarray(offset, offset + this.#remaining);
        offset += part.length;
        this.#remaining -= part.length;
        if (this.#type === MESSAGE.commandComplete || this.#type === MESSAGE.readyForQuery)
          this.#body.push(Buffer.from(part));
      }
      if (this.#remaining === 0) this.#complete();
    }
  }

  #complete(): void {
    const body = Buffer.concat(this.#body);
    this.#remaining = -1;
    this.status = this.#type === MESSAGE.readyForQuery ? (body.toString('latin1', 0, 1) as 'I' | 'T' | 'E') : null;
    if (this.#type === MESSAGE.commandComplete) this.tags.push(body.toString('utf8').replace(/\0$/, ''));
  }
}
