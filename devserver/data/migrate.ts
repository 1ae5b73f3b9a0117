import { UsageError } from '../common/usage-error.js';
import { quoteIdent, type SchemaModel, type TableModel } from './table-model.js';
import type { QueryFn, SqlClient } from './sql-client.js';

export interface MigrationResult {
  /** The DDL statements that ran, in order (empty when nothing changed). */
  applied: string[];
}

export interface MigrateOptions {
  /** Apply changes that lose data (drop or retype a column, drop a table). Default false. */
  allowDestructive?: boolean;
}

/** The settings document's table; user tables start with a letter, so it cannot clash. */
export const STORAGE_TABLE = '_storage';

// The catalog's name (format_type) for each column type the model uses, where it differs.
const DATA_TYPE: Record<string, string> = { timestamptz: 'timestamp with time zone' };

/**
 * Brings the feature's PostgreSQL schema in line with `server/schema.ts`: creates the schema, the
 * role and its grants, creates tables, adds columns and indexes. A change that loses data is
 * refused with a `UsageError` that lists it, unless `allowDestructive`. All in one transaction.
 *
 * @example
 * await migrate(db, modelSchema('feature-x', schema))
 */
export async function migrate(
  db: SqlClient,
  model: SchemaModel,
  options: MigrateOptions = {},
): Promise<MigrationResult> {
  return db.adminTransaction(async (query) => {
    const applied: string[] = [];
    const run = async (sql: string) => {
      await query(sql);
      applied.push(sql);
    };
    const schema = quoteIdent(model.schema);
    const role = quoteIdent(model.role);
    if ((await query('SELECT 1 FROM pg_roles WHERE rolname = $1', [model.role])).length === 0)
      await run(`CREATE ROLE ${role} NOLOGIN`);
    if ((await query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [model.schema])).length === 0) {
      await run(`CREATE SCHEMA ${schema}`);
      // The feature's role may use its own schema and nothing else.
      await run(`GRANT USAGE ON SCHEMA ${schema} TO ${role}`);
    }

    const existing = await describeSchema(query, model.schema);
    const destructive: string[] = [];
    const later: string[] = [];
    for (const table of model.tables.values()) {
      const current = existing.get(table.name);
      if (!current) {
        await run(createTable(table));
        continue;
      }
      const empty = (await query(`SELECT 1 FROM ${table.sql} LIMIT 1`)).length === 0;
      for (const column of table.columns.values()) {
        const found = current.get(column.name);
        if (!found) {
          if (!column.nullable && !empty) {
            throw new UsageError(
              `Cannot add required column "${table.name}.${column.name}": the table has rows. Make it v.optional(...), ` +
                `or empty the feature's tables: npx favn db reset --yes`,
            );
          }
          later.push(`ALTER TABLE ${table.sql} ADD COLUMN ${columnDefinition(column)}`);
        } else if (found.dataType !== (DATA_TYPE[column.sqlType] ?? column.sqlType)) {
          destructive.push(`retype "${table.name}.${column.name}" from ${found.dataType} to ${column.sqlType}`);
          later.push(
            `ALTER TABLE ${table.sql} DROP COLUMN ${column.sql}`,
            `ALTER TABLE ${table.sql} ADD COLUMN ${columnDefinition(column)}`,
          );
        } else if (found.nullable && !column.nullable) {
          destructive.push(`make "${table.name}.${column.name}" required (rows may hold null)`);
          later.push(
            `DELETE FROM ${table.sql} WHERE ${column.sql} IS NULL`,
            `ALTER TABLE ${table.sql} ALTER COLUMN ${column.sql} SET NOT NULL`,
          );
        } else if (!found.nullable && column.nullable) {
          later.push(`ALTER TABLE ${table.sql} ALTER COLUMN ${column.sql} DROP NOT NULL`);
        }
      }
      for (const name of current.keys()) {
        if (!table.columns.has(name)) {
          destructive.push(`drop column "${table.name}.${name}"`);
          later.push(`ALTER TABLE ${table.sql} DROP COLUMN ${quoteIdent(name)}`);
        }
      }
    }
    if (model.storage && !existing.has(STORAGE_TABLE)) {
      await run(
        `CREATE TABLE ${schema}.${quoteIdent(STORAGE_TABLE)} ("key" text PRIMARY KEY, "doc" jsonb NOT NULL, "updatedAt" timestamptz(3) NOT NULL DEFAULT now())`,
      );
    }
    for (const name of existing.keys()) {
      if (name === STORAGE_TABLE) continue;
      if (!model.tables.has(name)) {
        destructive.push(`drop table "${name}"`);
        later.push(`DROP TABLE ${schema}.${quoteIdent(name)}`);
      }
    }
    if (destructive.length && !options.allowDestructive) {
      throw new UsageError(
        `Refusing a schema change that loses data: ${destructive.join('; ')}. The previous schema keeps serving. ` +
          `Undo the change, or confirm it with one of these commands in the feature's folder (they also work while vite runs):\n` +
          `  npx favn db migrate --allow-destructive   (applies the change; the dropped data is lost)\n` +
          `  npx favn db reset --yes                   (drops all the feature's tables and data, re-creates them empty)\n` +
          `or restart the dev server with it allowed: FAVN_ALLOW_DESTRUCTIVE_MIGRATIONS=1 npx vite`,
      );
    }
    for (const sql of later) await run(sql);
    await syncIndexes(query, model, run);
    if (applied.length) await run(`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ${schema} TO ${role}`);
    return { applied };
  });
}

/** Drops the feature's schema (all its tables and data); the next migration starts fresh. */
export async function resetSchema(db: SqlClient, model: SchemaModel): Promise<void> {
  await db.adminTransaction((query) => query(`DROP SCHEMA IF EXISTS ${quoteIdent(model.schema)} CASCADE`));
}

function createTable(table: TableModel): string {
  const columns = [...table.columns.values()].map(columnDefinition);
  return `CREATE TABLE ${table.sql} (${columns.join(', ')})`;
}

function columnDefinition(column: TableModel['columns'] extends ReadonlyMap<string, infer C> ? C : never): string {
  if (column.name === 'id') return '"id" uuid PRIMARY KEY DEFAULT gen_random_uuid()';
  // Millisecond precision: what a JS Date (and so a pagination cursor) can represent exactly.
  if (column.name === 'createdAt') return '"createdAt" timestamptz(3) NOT NULL DEFAULT now()';
  return `${column.sql} ${column.sqlType}${column.nullable ? '' : ' NOT NULL'}`;
}

async function describeSchema(
  query: QueryFn,
  schema: string,
): Promise<Map<string, Map<string, { dataType: string; nullable: boolean }>>> {
  // The catalog itself, read as information_schema.columns reads it (the same relations: tables,
  // views, foreign and partitioned tables; a domain column as its base type, required when the
  // domain is). With the index query below: 58 against 100 ms at the median on a database just
  // opened (docs/benchmarks.md, devloop).
  const rows = await query(
    `SELECT c.relname AS table_name, a.attname AS column_name,
       format_type(CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE a.atttypid END, NULL) AS data_type,
       NOT (a.attnotnull OR (t.typtype = 'd' AND t.typnotnull)) AS nullable
     FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_type t ON t.oid = a.atttypid
     WHERE n.nspname = $1 AND c.relkind IN ('r', 'v', 'f', 'p') AND a.attnum > 0 AND NOT a.attisdropped
     ORDER BY c.relname, a.attnum`,
    [schema],
  );
  const tables = new Map<string, Map<string, { dataType: string; nullable: boolean }>>();
  for (const row of rows) {
    const table = tables.get(row.table_name as string) ?? new Map();
    table.set(row.column_name as string, { dataType: row.data_type as string, nullable: row.nullable === true });
    tables.set(row.table_name as string, table);
  }
  return tables;
}

async function syncIndexes(query: QueryFn, model: SchemaModel, run: (sql: string) => Promise<void>): Promise<void> {
  // pg_indexes without its view: the indexes of the schema's tables.
  const rows = await query(
    `SELECT i.relname AS indexname FROM pg_index x
       JOIN pg_class t ON t.oid = x.indrelid JOIN pg_class i ON i.oid = x.indexrelid
       JOIN pg_namespace n ON n.oid = t.relnamespace
     WHERE n.nspname = $1 AND t.relkind IN ('r', 'm', 'p') AND i.relkind IN ('i', 'I') AND i.relname NOT LIKE '%_pkey'`,
    [model.schema],
  );
  const existing = new Set(rows.map((r) => r.indexname as string));
  const wanted = new Set<string>();
  for (const table of model.tables.values()) {
    for (const index of table.indexes) {
      // Index names are per schema in PostgreSQL; prefix the table so two tables may share one.
      const name = `${table.name}_${index.name}`;
      wanted.add(name);
      if (!existing.has(name)) {
        await run(
          `CREATE INDEX ${quoteIdent(name)} ON ${table.sql} (${index.columns.map((c) => quoteIdent(c)).join(', ')})`,
        );
      }
    }
  }
  for (const name of existing)
    if (!wanted.has(name)) await run(`DROP INDEX ${quoteIdent(model.schema)}.${quoteIdent(name)}`);
}
