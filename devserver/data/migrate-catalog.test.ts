/**
 * The migration check reads the live schema from the catalog. Every column type the model emits
 * must read back under the name the model compares with (else each start retypes, i.e. drops, a
 * column), and columns a user changed by hand through the dev database must be judged as
 * information_schema judged them. On PGlite and on a throwaway PostgreSQL server.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres, type TestPostgres } from '../../fixtures/postgres.js';
import { defineSchema, defineTable } from '../../runtime/schema.js';
import { v } from '../../runtime/validators.js';
import { migrate } from './migrate.js';
import { openPglite } from './pglite-client.js';
import { openPostgres } from './postgres-client.js';
import type { SqlClient } from './sql-client.js';
import { modelSchema, type SchemaModel } from './table-model.js';

type Engine = 'pglite' | 'postgres';

/** One column of every kind `sqlTypeOf` knows, required and optional. */
const everyType = defineSchema({
  items: defineTable({
    title: v.string(),
    score: v.number(),
    count: v.int(),
    done: v.boolean(),
    owner: v.id('items'),
    kind: v.literal('a'),
    level: v.literal(3),
    flag: v.literal(true),
    either: v.union(v.literal('x'), v.literal('y')),
    mixed: v.union(v.string(), v.int()),
    meta: v.object({ a: v.string() }),
    list: v.array(v.string()),
    raw: v.json(),
    note: v.optional(v.string()),
    maybe: v.optional(v.number()),
  }).index('by_count', ['count']),
});

let postgres: TestPostgres | undefined;
beforeAll(async () => {
  postgres = await startPostgres();
});
afterAll(async () => {
  await postgres?.stop();
});

async function open(engine: Engine): Promise<SqlClient> {
  return engine === 'pglite' ? openPglite(null) : openPostgres(await postgres!.createDatabase(), { max: 2 });
}

/** The database with the model's schema applied; `sql` runs the user's own statement in it. */
async function migrated(engine: Engine, featureId: string): Promise<{ db: SqlClient; model: SchemaModel }> {
  const db = await open(engine);
  const model = modelSchema(featureId, everyType);
  await migrate(db, model);
  return { db, model };
}

const sql = (db: SqlClient, text: string) => db.adminTransaction((q) => q(text));

/** What a start of the dev server does with the database as it is: what it ran, or why it refused. */
async function check(db: SqlClient, model: SchemaModel): Promise<string[] | string> {
  try {
    return (await migrate(db, model)).applied;
  } catch (error) {
    return (error as Error).message.split('. The previous schema')[0]!;
  }
}

describe.each<Engine>(['pglite', 'postgres'])('the migration check on %s', (engine) => {
  it('finds every column type the model emits unchanged on the next start', async () => {
    const { db, model } = await migrated(engine, 'feature-catalog-types');
    try {
      expect(await check(db, model)).toEqual([]);
      // Also with rows in the table (the check then cannot just re-create it).
      await sql(
        db,
        `INSERT INTO "ext_feature_catalog_types".items (title, score, count, done, owner, kind, level, flag, either, mixed, meta, list, raw)
         VALUES ('t', 1.5, 2, true, gen_random_uuid(), 'a', 3, true, '"x"', '1', '{"a":"b"}', '["c"]', 'null')`,
      );
      expect(await check(db, model)).toEqual([]);
      const rows = await db.adminTransaction((q) => q('SELECT title, meta FROM "ext_feature_catalog_types".items'));
      expect(rows).toEqual([{ title: 't', meta: { a: 'b' } }]);
    } finally {
      await db.close();
    }
  });

  it('names a column the user retyped by hand with its catalog name when refusing the change', async () => {
    const { db, model } = await migrated(engine, 'feature-catalog-retype');
    try {
      const table = '"ext_feature_catalog_retype".items';
      await sql(db, `ALTER TABLE ${table} ALTER COLUMN title TYPE varchar(40)`);
      await sql(db, `ALTER TABLE ${table} ALTER COLUMN score TYPE numeric(10, 2)`);
      await sql(db, `ALTER TABLE ${table} ALTER COLUMN count TYPE integer`);
      await sql(db, `ALTER TABLE ${table} ALTER COLUMN note TYPE text[] USING ARRAY[note]`);
      expect(await check(db, model)).toBe(
        'Refusing a schema change that loses data: retype "items.title" from character varying to text; ' +
          'retype "items.score" from numeric to double precision; retype "items.count" from integer to bigint; ' +
          'retype "items.note" from text[] to text',
      );
    } finally {
      await db.close();
    }
  });

  it('takes a column the user moved to a domain over the same type as that type, as before', async () => {
    // information_schema.columns reports a domain column as its base type (and NOT NULL when
    // the domain says so): a schema that served yesterday must not be refused after an update.
    const { db, model } = await migrated(engine, 'feature-catalog-domain');
    try {
      await sql(db, `CREATE DOMAIN "ext_feature_catalog_domain".short_text AS text CHECK (length(VALUE) < 100)`);
      await sql(
        db,
        `ALTER TABLE "ext_feature_catalog_domain".items ALTER COLUMN title TYPE "ext_feature_catalog_domain".short_text`,
      );
      expect(await check(db, model)).toEqual([]);
    } finally {
      await db.close();
    }
  });

  it('does not see a column the user added and dropped again', async () => {
    const { db, model } = await migrated(engine, 'feature-catalog-dropped');
    try {
      await sql(db, 'ALTER TABLE "ext_feature_catalog_dropped".items ADD COLUMN scratch integer');
      await sql(db, 'ALTER TABLE "ext_feature_catalog_dropped".items DROP COLUMN scratch');
      expect(await check(db, model)).toEqual([]);
    } finally {
      await db.close();
    }
  });

  it('refuses to drop a view or a partitioned table the user made in the feature schema, naming it', async () => {
    const { db, model } = await migrated(engine, 'feature-catalog-relations');
    try {
      const schema = '"ext_feature_catalog_relations"';
      await sql(db, `CREATE VIEW ${schema}.recent AS SELECT id, title FROM ${schema}.items`);
      await sql(db, `CREATE TABLE ${schema}.events (at date NOT NULL, what text) PARTITION BY RANGE (at)`);
      await sql(
        db,
        `CREATE TABLE ${schema}.events_2026 PARTITION OF ${schema}.events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')`,
      );
      // A sequence, a materialized view and a composite type are not tables: not listed.
      await sql(db, `CREATE SEQUENCE ${schema}.counter`);
      await sql(db, `CREATE MATERIALIZED VIEW ${schema}.totals AS SELECT count(*) AS n FROM ${schema}.items`);
      await sql(db, `CREATE TYPE ${schema}.pair AS (a int, b int)`);
      expect(await check(db, model)).toBe(
        'Refusing a schema change that loses data: drop table "events"; drop table "events_2026"; drop table "recent"',
      );
    } finally {
      await db.close();
    }
  });

  it("keeps the model's indexes and drops one the user added by hand", async () => {
    const { db, model } = await migrated(engine, 'feature-catalog-indexes');
    try {
      const indexes = () =>
        db.adminTransaction((q) =>
          q(`SELECT indexname FROM pg_indexes WHERE schemaname = 'ext_feature_catalog_indexes' ORDER BY 1`),
        );
      expect((await indexes()).map((r) => r.indexname)).toEqual(['items_by_count', 'items_pkey']);
      await sql(db, 'CREATE INDEX by_title ON "ext_feature_catalog_indexes".items (title)');
      expect(await check(db, model)).toEqual([
        'DROP INDEX "ext_feature_catalog_indexes"."by_title"',
        'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "ext_feature_catalog_indexes" TO "ext_feature_catalog_indexes"',
      ]);
      await sql(db, 'DROP INDEX "ext_feature_catalog_indexes".items_by_count');
      expect((await check(db, model))[0]).toBe(
        'CREATE INDEX "items_by_count" ON "ext_feature_catalog_indexes"."items" ("count")',
      );
      expect(await check(db, model)).toEqual([]);
    } finally {
      await db.close();
    }
  });
});
