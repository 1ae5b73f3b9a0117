/**
 * The types of a call's context, as every kind of server function sees it, and of its result on
 * the client. A leaf module: the SDK modules (`declarative`, `handlers`, `server`) build on it.
 */
import type { Row, SchemaDefinition } from './schema.js';
import type { Infer, Validator } from './validators.js';

/** What the host knows about who is calling and where. */
export interface Visibility {
  featureToggles: string[];
  tenantId: string | null;
}

/**
 * Hands the feature's schema type to the package, so `ctx.db`, declarative functions and
 * `useExtensionStorage()` are typed by it. The plugin writes this augmentation for you into
 * `.favn/types/server-fns.d.ts` (on `vite`, `vite build`, `npm install` and `favn types`); without
 * it, tables are any string and rows loosely typed.
 *
 * @example
 * declare module '@favn/vite-plugin-server-fns/server' {
 *   interface Register { schema: typeof import('../server/schema').default }
 * }
 */
// oxlint-disable-next-line no-empty-interface -- filled by declaration merging
export interface Register {}

/** The registered schema, or any schema when none is registered. */
export type RegisteredSchema = Register extends { schema: infer S extends SchemaDefinition } ? S : SchemaDefinition;

/** The feature's tables by name. */
export type Tables = RegisteredSchema['tables'];

/** A table name of the feature's schema (any string when no schema is registered). */
export type TableName = keyof Tables & string;

/** A row of `table` as the database returns it: its columns plus `id` and `createdAt` (ISO string). */
export type RowOf<T extends TableName> = Row<Tables[T]>;

type OptionalColumns<C> = {
  [K in keyof C]: C[K] extends Validator<infer V> ? (undefined extends V ? K : never) : never;
}[keyof C];

/** The values of a new row of `table`: required columns required, `v.optional(...)` ones optional. */
export type NewRowOf<T extends TableName> = Simplify<
  {
    [K in Exclude<keyof Tables[T]['columns'], OptionalColumns<Tables[T]['columns']>>]: Infer<Tables[T]['columns'][K]>;
  } & {
    [K in OptionalColumns<Tables[T]['columns']>]?: Infer<Tables[T]['columns'][K]>;
  }
>;

/** Column names of `table`, with `id` and `createdAt`. */
export type ColumnOf<T extends TableName> = (keyof Tables[T]['columns'] & string) | 'id' | 'createdAt';

/** The operators of one column's filter: `{ votes: { gte: 3 } }`. `in` binds as `= ANY($n)`. */
export interface Filter<V> {
  eq?: V;
  neq?: V;
  lt?: V;
  lte?: V;
  gt?: V;
  gte?: V;
  in?: readonly V[];
  isNull?: boolean;
  like?: string;
}

/** Filters, order and paging of `ctx.db.query` (the same as a `queryRows` client sends). */
export interface QueryInput<T extends TableName = TableName, Filterable extends ColumnOf<T> = ColumnOf<T>> {
  /** Filters by column; a `queryRows` with `filterable` takes only those columns. */
  where?: { [K in Filterable]?: Filter<NonNullable<RowOf<T>[K]>> };
  orderBy?: { column: ColumnOf<T>; direction?: 'asc' | 'desc' };
  limit?: number;
  cursor?: string;
}

/** One page of rows; `nextCursor` is `null` on the last page. */
export interface Page<R> {
  rows: R[];
  nextCursor: string | null;
}

/** A row: the table's columns plus `id` and `createdAt` (ISO string). */
export type DbRow = Record<string, unknown> & { id: string; createdAt: string };

/** `ctx.db` reads: what a `query` handler has. */
export interface DbReader {
  get<T extends TableName>(table: T, id: string): Promise<RowOf<T> | null>;
  query<T extends TableName>(table: T, input?: QueryInput<T>): Promise<Page<RowOf<T>>>;
}

/** `ctx.db` writes, besides its reads: what a `mutation` handler has. */
export interface DbWriter extends DbReader {
  insert<T extends TableName>(table: T, values: NewRowOf<T>): Promise<RowOf<T>>;
  patch<T extends TableName>(table: T, id: string, changes: Partial<NewRowOf<T>>): Promise<RowOf<T>>;
  delete<T extends TableName>(table: T, id: string): Promise<{ deleted: string }>;
}

/**
 * `ctx.db`: the feature's own tables (from `server/schema.ts`) and nothing else, typed by it.
 *
 * @example
 * const rule = await ctx.db.insert('rules', { text: 'be kind', votes: 0 })
 * const { rows } = await ctx.db.query('rules', { where: { votes: { gte: 1 } }, limit: 10 })
 */
export interface FeatureDb extends DbWriter {
  /** Runs `fn` in one transaction: all of its writes, or none if it throws. */
  transaction<R>(fn: (db: DbWriter) => Promise<R>): Promise<R>;
}

type Simplify<T> = { [K in keyof T]: T[K] } & {};

/** Who is calling and in which call: what every kind of server function's `ctx` carries. */
export interface CallContext {
  /** A fresh id per call; also in the `x-request-id` response header and error bodies. */
  requestId: string;
  /** The feature the function belongs to. */
  featureId: string;
  /** Roles merged from all auth sources, de-duplicated. */
  userRoles: string[];
  /** Raw JWT claims, `null` when the caller is anonymous. */
  claims: Record<string, unknown> | null;
  visibility: Visibility;
  auth: { userId: string | null };
}

/** The first argument of every plain server function. */
export interface ServerContext extends CallContext {
  /** The feature's own tables. */
  db: FeatureDb;
  /** Secrets from the host's secret store (`.env.local` in dev). Never sent to the client. */
  secrets: Readonly<Record<string, string>>;
  /** Aborted when the call times out or the client disconnects. */
  signal: AbortSignal;
}

/**
 * The client-side type of a server function: `ctx` removed, result JSON-serialized and async.
 */
export type ClientFunction<F> = F extends (ctx: ServerContext, ...args: infer A) => infer R
  ? (...args: A) => Promise<Jsonified<Awaited<R>>>
  : never;

/** What a value looks like after a JSON round trip. */
export type Jsonified<T> = unknown extends T
  ? unknown // any and unknown stay as they are
  : T extends { toJSON(): infer J }
    ? Jsonified<J>
    : T extends string | number | boolean | null
      ? T
      : T extends undefined | void | Dropped
        ? null
        : T extends ReadonlyMap<unknown, unknown> | ReadonlySet<unknown>
          ? Record<string, never> // JSON.stringify(new Map(...)) is "{}"
          : T extends readonly unknown[]
            ? { -readonly [I in keyof T]: Jsonified<T[I]> } // undefined in an array becomes null
            : T extends object
              ? JsonObject<T>
              : never;

/** Values `JSON.stringify` leaves out of objects (and writes as `null` in arrays). */
type Dropped = ((...args: never[]) => unknown) | symbol;

/** An object after a JSON round trip: functions and symbols gone, keys that may be undefined optional. */
type JsonObject<T> = Simplify<
  {
    [
      K in keyof T as K extends symbol
        ? never
        : T[K] extends Dropped | undefined
          ? never
          : undefined extends T[K]
            ? never
            : K
    ]: Jsonified<T[K]>;
  } & {
    [
      K in keyof T as K extends symbol
        ? never
        : T[K] extends Dropped | undefined
          ? never
          : undefined extends T[K]
            ? K
            : never
    ]?: Jsonified<Exclude<T[K], undefined>>;
  }
>;
