/**
 * One statement of a feature as one PostgreSQL wire-protocol message for PGlite: `BEGIN` and the
 * role (simple query), the statement with its parameters (Parse, Bind, Describe, Execute, Sync) and
 * `COMMIT`, so PGlite's backend is entered once instead of about a dozen times. After a failing
 * statement Postgres skips to Sync and the trailing `COMMIT` ends the failed transaction (it rolls
 * back), so the database is left clean either way.
 */

/** The most parameters one Bind message can count (an unsigned 16-bit number). */
export const MAX_PIPELINED_PARAMETERS = 0xffff;

/** Whether `value` is sent as text exactly as PGlite's own `query` would send it. */
export function isScalarParameter(value: unknown): boolean {
  return (
    value === null ||
    value === undefined ||
    typeof value === 'string' ||
    typeof value === 'boolean' ||
    typeof value === 'bigint' ||
    (typeof value === 'number' && Number.isFinite(value))
  );
}

/**
 * The message: `prefix` (simple query), `text` with `values` (text parameters; scalars only, see
 * `isScalarParameter`), then `suffix` (simple query). Written into one buffer: sizes first, then
 * the bytes, with no per-field allocation (this runs on every declarative call).
 *
 * @example
 * pipelinedStatement('BEGIN; SET LOCAL ROLE "ext_x"', 'SELECT $1::int AS n', [1], 'COMMIT')
 */
export function pipelinedStatement(
  prefix: string,
  text: string,
  values: readonly unknown[],
  suffix: string,
): Uint8Array {
  const params: (string | null)[] = values.map((value) =>
    value === null || value === undefined ? null : String(value),
  );
  const prefixBytes = Buffer.byteLength(prefix);
  const textBytes = Buffer.byteLength(text);
  const suffixBytes = Buffer.byteLength(suffix);
  const sizes = params.map((param) => (param === null ? -1 : Buffer.byteLength(param)));
  const paramBytes = sizes.reduce((n, size) => n + 4 + Math.max(size, 0), 0);
  // Each message: type (1) + length (4) + body. Strings are NUL-terminated.
  const query = 5 + prefixBytes + 1;
  const parse = 5 + 1 + textBytes + 1 + 2;
  const bind = 5 + 1 + 1 + 2 + 2 + paramBytes + 2;
  const describe = 5 + 1 + 1;
  const execute = 5 + 1 + 4;
  const sync = 5;
  const commit = 5 + suffixBytes + 1;
  // Its own ArrayBuffer (offset 0), not a slice of Node's shared pool.
  const out = Buffer.allocUnsafeSlow(query + parse + bind + describe + execute + sync + commit);
  let at = 0;
  const head = (type: string, size: number) => {
    out[at] = type.charCodeAt(0);
    out.writeInt32BE(size - 1, at + 1);
    at += 5;
  };
  const cstring = (s: string, bytes: number) => {
    out.write(s, at, bytes, 'utf8');
    at += bytes;
    out[at++] = 0;
  };
  // Counts and format codes: PostgreSQL reads them as unsigned 16-bit numbers.
  const int16 = (n: number) => {
    at = out.writeUInt16BE(n, at);
  };
  head('Q', query);
  cstring(prefix, prefixBytes);
  head('P', parse);
  out[at++] = 0; // unnamed statement
  cstring(text, textBytes);
  int16(0); // no parameter types: the server infers them
  head('B', bind);
  out[at++] = 0; // unnamed portal
  out[at++] = 0; // unnamed statement
  int16(0); // every parameter as text
  int16(params.length);
  params.forEach((param, i) => {
    at = out.writeInt32BE(sizes[i]!, at); // -1: NULL
    if (param !== null) at += out.write(param, at, sizes[i]!, 'utf8');
  });
  int16(0); // every result column as text
  head('D', describe);
  out[at++] = 'P'.charCodeAt(0);
  out[at++] = 0;
  head('E', execute);
  out[at++] = 0;
  at = out.writeInt32BE(0, at); // no row limit
  head('S', sync);
  head('Q', commit);
  cstring(suffix, suffixBytes);
  return out;
}

/** A backend message as PGlite's `execProtocol` returns them (the parts read here). */
interface BackendMessage {
  name: string;
  fields?: unknown[];
}

/** Parses a column's text by its type, as PGlite's parsers do (`int8` to a number, `timestamptz` to a `Date`, ...). */
type Parsers = Record<number, (value: string, typeId: number) => unknown>;

/** The rows of the statement's result, as PGlite's `query` would return them. */
export function rowsOf(messages: readonly BackendMessage[], parsers: Parsers): Record<string, unknown>[] {
  let fields: { name: string; dataTypeID: number }[] = [];
  const rows: Record<string, unknown>[] = [];
  for (const m of messages) {
    if (m.name === 'rowDescription') fields = m.fields as { name: string; dataTypeID: number }[];
    else if (m.name === 'dataRow') {
      const values = m.fields as (string | null)[];
      const row: Record<string, unknown> = {};
      for (let i = 0; i < fields.length; i++) {
        const { name, dataTypeID } = fields[i]!;
        const text = values[i];
        const parse = parsers[dataTypeID];
        row[name] = text === null || text === undefined ? null : parse ? parse(text, dataTypeID) : text;
      }
      rows.push(row);
    }
  }
  return rows;
}
