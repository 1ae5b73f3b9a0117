import { UsageError } from '../common/usage-error.js';
import type { SchemaDefinition, TableDefinition } from '../../runtime/schema.js';
import { v, type Validator } from '../../runtime/validators.js';

/** One column as the SQL layer sees it. */
export interface ColumnModel {
  name: string;
  /** Quoted identifier, safe to splice into SQL. */
  sql: string;
  validator: Validator;
  sqlType: string;
  nullable: boolean;
  /** Stored as jsonb: bound as JSON text with a `::jsonb` cast. */
  json: boolean;
  /** `id` and `createdAt`: set by the database, never by a client. */
  system: boolean;
}

export interface TableModel {
  name: string;
  /** `"ext_feature_x"."rules"` */
  sql: string;
  columns: ReadonlyMap<string, ColumnModel>;
  indexes: TableDefinition['indexes'];
}

/** A feature's schema as the SQL layer sees it. */
export interface SchemaModel {
  /** PostgreSQL schema and role of the feature: `ext_{featureId with - as _}`. */
  schema: string;
  role: string;
  tables: ReadonlyMap<string, TableModel>;
  /** Validator of the settings document (`defineSchema(..., { storage })`), `null` without one. */
  storage: Validator | null;
}

const IDENTIFIER = /^[A-Za-z][A-Za-z0-9_]{0,62}$/;

/**
 * The PostgreSQL schema (and role) name of a feature.
 *
 * @example
 * schemaNameFor('feature-my-feature') // 'ext_feature_my_feature'
 */
export function schemaNameFor(featureId: string): string {
  return `ext_${featureId.replace(/-/g, '_')}`;
}

/** Double-quotes an identifier that was already checked against `IDENTIFIER`. */
export function quoteIdent(name: string): string {
  if (!IDENTIFIER.test(name) && !/^ext_[a-z0-9_]{1,63}$/.test(name) && name !== '_storage')
    throw new Error(`Refusing to quote identifier ${JSON.stringify(name)}: this is a bug`);
  return `"${name}"`;
}

/**
 * Checks a `defineSchema` value and turns it into the model the compiler and migrations use.
 * Bad table or column names are usage errors naming the schema file.
 */
export function modelSchema(
  featureId: string,
  schema: SchemaDefinition | null,
  file = 'server/schema.ts',
): SchemaModel {
  const schemaName = schemaNameFor(featureId);
  const tables = new Map<string, TableModel>();
  for (const [tableName, table] of Object.entries(schema?.tables ?? {})) {
    if (!IDENTIFIER.test(tableName))
      throw new UsageError(`${file}: table name "${tableName}" must be letters, digits and _, starting with a letter`, {
        file,
      });
    const columns = new Map<string, ColumnModel>();
    columns.set('id', {
      name: 'id',
      sql: '"id"',
      validator: v.id(tableName),
      sqlType: 'uuid',
      nullable: false,
      json: false,
      system: true,
    });
    columns.set('createdAt', {
      name: 'createdAt',
      sql: '"createdAt"',
      validator: TIMESTAMP,
      sqlType: 'timestamptz',
      nullable: false,
      json: false,
      system: true,
    });
    for (const [columnName, validator] of Object.entries(table.columns)) {
      if (!IDENTIFIER.test(columnName))
        throw new UsageError(
          `${file}: column "${tableName}.${columnName}" must be letters, digits and _, starting with a letter`,
          { file },
        );
      if (columns.has(columnName))
        throw new UsageError(
          `${file}: column "${tableName}.${columnName}" is reserved: every row already has id and createdAt`,
          { file },
        );
      if (!validator || typeof (validator as Validator).check !== 'function')
        throw new UsageError(`${file}: column "${tableName}.${columnName}" must be a v.* validator`, { file });
      const nullable = validator.kind === 'optional';
      const inner = nullable ? (validator.inner as Validator) : validator;
      const sqlType = sqlTypeOf(inner);
      columns.set(columnName, {
        name: columnName,
        sql: quoteIdent(columnName),
        validator: storable(validator),
        sqlType,
        nullable,
        json: sqlType === 'jsonb',
        system: false,
      });
    }
    for (const index of table.indexes) {
      if (!IDENTIFIER.test(index.name))
        throw new UsageError(`${file}: index name "${index.name}" must be letters, digits and _`, { file });
      for (const col of index.columns)
        if (!columns.has(col))
          throw new UsageError(`${file}: index "${index.name}" of "${tableName}" names unknown column "${col}"`, {
            file,
          });
    }
    tables.set(tableName, {
      name: tableName,
      sql: `${quoteIdent(schemaName)}.${quoteIdent(tableName)}`,
      columns,
      indexes: table.indexes,
    });
  }
  return { schema: schemaName, role: schemaName, tables, storage: schema?.storage ? v.object(schema.storage) : null };
}

/** `createdAt` values a client may compare with: ISO timestamps. */
const TIMESTAMP: Validator = {
  ...v.string(),
  check: (x, path = []) =>
    typeof x === 'string' &&
    /^\d{4}-\d{2}-\d{2}([T ][\d:.]+)?(Z|[+-]\d{2}(:?\d{2})?)?$/.test(x) &&
    !Number.isNaN(Date.parse(x))
      ? []
      : [
          {
            path,
            message: `expected an ISO timestamp, got ${typeof x === 'string' ? JSON.stringify(x.slice(0, 40)) : typeof x}`,
          },
        ],
};

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * Adds what PostgreSQL itself cannot store to a column's checks: NUL characters (text and jsonb)
 * and lone surrogates (jsonb). Refused as 422 here rather than failing in the database.
 */
function storable(validator: Validator): Validator {
  return {
    ...validator,
    inner: validator.inner && storable(validator.inner),
    check: (value, path = []) => {
      const issues = validator.check(value, path);
      return issues.length ? issues : storableIssues(value, path);
    },
  };
}

/** Issues of a value PostgreSQL cannot store (NUL, lone surrogates), however deep. */
export function storableIssues(
  value: unknown,
  path: (string | number)[],
  depth = 0,
): { message: string; path: (string | number)[] }[] {
  if (typeof value === 'string') {
    if (value.includes('\u0000')) return [{ path, message: 'must not contain NUL (\\u0000) characters' }];
    if (LONE_SURROGATE.test(value)) return [{ path, message: 'must not contain unpaired UTF-16 surrogates' }];
    return [];
  }
  if (depth > 64 || typeof value !== 'object' || value === null) return [];
  return Object.entries(value).flatMap(([k, item]) => [
    ...storableIssues(k, path, depth + 1),
    ...storableIssues(item, [...path, Array.isArray(value) ? Number(k) : k], depth + 1),
  ]);
}

/** The column type a validator is stored as. */
export function sqlTypeOf(validator: Validator): string {
  switch (validator.kind) {
    case 'string':
      return 'text';
    case 'number':
      return 'double precision';
    case 'int':
      return 'bigint';
    case 'boolean':
      return 'boolean';
    case 'id':
      return 'uuid';
    case 'literal':
      return typeof validator.value === 'string'
        ? 'text'
        : typeof validator.value === 'number'
          ? 'double precision'
          : 'boolean';
    case 'union': {
      const types = new Set((validator.members ?? []).map(sqlTypeOf));
      return types.size === 1 ? [...types][0]! : 'jsonb';
    }
    case 'optional':
      return sqlTypeOf(validator.inner as Validator);
    default:
      return 'jsonb';
  }
}
