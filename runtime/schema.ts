/**
 * `server/schema.ts` of a feature: its tables. Every row also has `id` (UUID) and `createdAt`.
 *
 * @example
 * export default defineSchema({
 *   rules: defineTable({ text: v.string(), votes: v.int(), ownerId: v.optional(v.string()) })
 *     .index('by_votes', ['votes']),
 * })
 */
import type { Infer, Validator } from './validators.js';

/** Columns every row has besides its own. */
export const SYSTEM_COLUMNS = ['id', 'createdAt'] as const;

export interface TableIndex {
  name: string;
  columns: readonly string[];
}

export interface TableDefinition<Columns extends Record<string, Validator> = Record<string, Validator>> {
  readonly columns: Columns;
  readonly indexes: readonly TableIndex[];
  /** Adds an index on `columns` (created on save in dev). */
  index(name: string, columns: readonly (keyof Columns & string)[]): TableDefinition<Columns>;
}

export interface SchemaDefinition<
  Tables extends Record<string, TableDefinition> = Record<string, TableDefinition>,
  Storage extends Record<string, Validator> = Record<string, Validator>,
> {
  readonly tables: Tables;
  /** Shape of the feature's settings document for `useExtensionStorage()`; `null` without one. */
  readonly storage: Readonly<Storage> | null;
}

/** The settings document of a schema: `StorageOf<typeof schema>`; `v.optional` fields may be left out. */
export type StorageOf<S> =
  S extends SchemaDefinition<Record<string, TableDefinition>, infer Storage> ? Fields<Storage> : never;

/** An object of validated fields: the ones whose validator accepts `undefined` are optional. */
export type Fields<Shape> = Simplify<
  { [K in keyof Shape as undefined extends Infer<Shape[K]> ? never : K]: Infer<Shape[K]> } & {
    [K in keyof Shape as undefined extends Infer<Shape[K]> ? K : never]?: Infer<Shape[K]>;
  }
>;

type Simplify<T> = { [K in keyof T]: T[K] } & {};

/** A row of a table as the database returns it: a column without a value is `null`. */
export type Row<T extends TableDefinition> = { id: string; createdAt: string } & {
  [K in keyof T['columns']]: Exclude<Infer<T['columns'][K]>, undefined>;
};

/** A table's columns. Names are letters, digits and `_`, starting with a letter. */
export function defineTable<Columns extends Record<string, Validator>>(columns: Columns): TableDefinition<Columns> {
  return table(columns, []);
}

function table<Columns extends Record<string, Validator>>(
  columns: Columns,
  indexes: TableIndex[],
): TableDefinition<Columns> {
  return Object.freeze({
    columns: Object.freeze({ ...columns }),
    indexes: Object.freeze([...indexes]),
    index(name: string, cols: readonly (keyof Columns & string)[]) {
      return table(columns, [...indexes, { name, columns: [...cols] }]);
    },
  });
}

/** The feature's tables, and optionally the shape of its settings document. */
export function defineSchema<
  Tables extends Record<string, TableDefinition>,
  Storage extends Record<string, Validator> = Record<never, Validator>,
>(tables: Tables, options: { storage?: Storage } = {}): SchemaDefinition<Tables, Storage> {
  return Object.freeze({
    tables: Object.freeze({ ...tables }),
    storage: options.storage ? Object.freeze({ ...options.storage }) : null,
  });
}
