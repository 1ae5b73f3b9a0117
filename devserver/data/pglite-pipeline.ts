/**
 * One statement of a feature as one PostgreSQL wire-protocol message for PGlite: `BEGIN` and the
 * role (simple query), the statement with its parameters (Parse, Bind, Describe, Execute, Sync) and
 * `COMMIT`, so PGlite's backend is entered once instead of about a dozen times. After a failing
 * statement Postgres skips to Sync and the trailing `COMMIT` ends the failed transaction (it rolls
 * back), so the database is left clean either way.
 */

const encoder = new TextEncoder();

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
 * `isScalarParameter`), then `suffix` (simple query).
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
  const parts: Uint8Array[] = [];
  const message = (type: string, body: Uint8Array[]) => {
    const length = body.reduce((n, b) => n + b.length, 0) + 4;
    const head = new Uint8Array(5);
    head[0] = type.charCodeAt(0);
    new DataView(head.buffer).setInt32(1, length);
    parts.push(head, ...body);
  };
  const cstring = (s: string) => encoder.encode(`${s}\0`);
  const int16 = (n: number) => {
    const b = new Uint8Array(2);
    new DataView(b.buffer).setInt16(0, n);
    return b;
  };
  const int32 = (n: number) => {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setInt32(0, n);
    return b;
  };
  message('Q', [cstring(prefix)]);
  message('P', [cstring(''), cstring(text), int16(0)]);
  const params: Uint8Array[] = [];
  for (const value of values) {
    if (value === null || value === undefined) {
      params.push(int32(-1));
      continue;
    }
    const bytes = encoder.encode(String(value));
    params.push(int32(bytes.length), bytes);
  }
  message('B', [cstring(''), cstring(''), int16(0), int16(values.length), ...params, int16(0)]);
  message('D', [encoder.encode('P'), cstring('')]);
  message('E', [cstring(''), int32(0)]);
  message('S', []);
  message('Q', [cstring(suffix)]);
  const total = parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
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
