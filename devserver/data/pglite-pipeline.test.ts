import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineSchema, defineTable } from '../../runtime/schema.js';
import { v } from '../../runtime/validators.js';
import { migrate } from './migrate.js';
import { openPglite } from './pglite-client.js';
import { modelSchema } from './table-model.js';

// A declarative call's statement goes to PGlite as one hand-written wire-protocol message
// (`client.statement`): it must answer exactly as PGlite's own `query` does, whatever the text holds.
describe('one statement as one message on PGlite', () => {
  const model = modelSchema('pipeline', defineSchema({ notes: defineTable({ body: v.string(), n: v.int() }) }));
  let client: Awaited<ReturnType<typeof openPglite>>;
  let statement: NonNullable<typeof client.statement>;

  beforeAll(async () => {
    client = await openPglite(null);
    await migrate(client, model);
    statement = client.statement!.bind(client);
  });
  afterAll(async () => {
    await client?.close();
  });

  const texts = [
    '',
    'plain',
    'ünïcödé, 中文, עברית, 🎉👩‍👩‍👧 and a combining é',
    'quotes \' and " and \\ and $1 and ; COMMIT; --',
    'x'.repeat(70_000) + '€',
    '\u{10FFFF}\uFFFD',
  ];

  it('reads back every text parameter byte for byte, with the role set', async () => {
    for (const text of texts) {
      const sql = 'SELECT $1::text AS t, octet_length($1::text) AS bytes, current_user AS who';
      const rows = await statement(model.role, sql, [text], { readOnly: true });
      expect(rows).toEqual([{ t: text, bytes: Buffer.byteLength(text), who: model.role }]);
    }
  });

  it('answers like PGlite query for nulls, numbers, booleans, bigints and many parameters', async () => {
    const values = [null, undefined, 0, -1.5, 2 ** 53 - 1, true, false, 12345678901234567890n, 'z'];
    const sql =
      'SELECT $1::text AS a, $2::text AS b, $3::int AS c, $4::float8 AS d, $5::int8 AS e, $6::bool AS f, $7::bool AS g, $8::numeric AS h, $9 AS i';
    const mine = await statement(model.role, sql, values, { readOnly: true });
    const theirs = (await client.pglite.query(sql, values)).rows;
    expect(mine).toEqual(theirs);
    expect(mine).toEqual([
      { a: null, b: null, c: 0, d: -1.5, e: 2 ** 53 - 1, f: true, g: false, h: '12345678901234567890', i: 'z' },
    ]);

    const many = Array.from({ length: 300 }, (_, i) => `v${i}é`);
    const list = many.map((_, i) => `$${i + 1}::text`).join(' || ');
    expect(await statement(model.role, `SELECT ${list} AS joined`, many, { readOnly: true })).toEqual([
      { joined: many.join('') },
    ]);
  });

  it('counts up to 65535 parameters as PostgreSQL does (unsigned), and answers as the transaction path beyond', async () => {
    for (const count of [32_768, 65_535, 65_536]) {
      const values = Array.from({ length: count }, (_, i) => i);
      const sql = `SELECT cardinality(ARRAY[${values.map((_, i) => `$${i + 1}::int`).join(',')}]) AS n`;
      const run = (via: 'statement' | 'transaction') =>
        (via === 'statement'
          ? statement(model.role, sql, values, { readOnly: true })
          : client.transaction(model.role, (q) => q(sql, values), { readOnly: true })
        ).then(
          (rows) => ({ rows }),
          (error: Error) => ({ error: error.message }),
        );
      expect(await run('statement')).toEqual(await run('transaction'));
      expect(client.pglite.isInTransaction()).toBe(false);
    }
  });

  it('writes rows as the role, and a failing statement rolls back and leaves the database usable', async () => {
    const table = `"${model.schema}"."notes"`;
    const [row] = await statement(model.role, `INSERT INTO ${table} ("body", "n") VALUES ($1, $2) RETURNING *`, [
      texts[2],
      7,
    ]);
    expect(row).toMatchObject({ body: texts[2], n: 7 });

    await expect(
      statement(model.role, `INSERT INTO ${table} ("body", "n") VALUES ($1, $2) RETURNING *`, ['bad', 'not a number']),
    ).rejects.toThrow(/invalid input syntax for type (integer|bigint)/);
    await expect(
      statement(model.role, `INSERT INTO ${table} ("body", "n") VALUES ($1, $2)`, ['x', 1], { readOnly: true }),
    ).rejects.toThrow(/read-only transaction/);
    await expect(statement(model.role, 'SELEC nonsense', [], {})).rejects.toThrow(/syntax error/);
    expect(client.pglite.isInTransaction()).toBe(false);

    const rows = await statement(model.role, `SELECT "body", "n" FROM ${table}`, [], { readOnly: true });
    expect(rows).toEqual([{ body: texts[2], n: 7 }]);
  });
});
