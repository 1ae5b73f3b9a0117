/**
 * Declarative CRUD server functions: no JS runs per call, the host compiles each one once to
 * parameterized SQL against the feature's schema.
 *
 * @example
 * // src/rules.server.ts
 * export const listRules = queryRows('rules', { scope: { ownerId: 'auth.userId' } })
 * export const addRule = insertRow('rules', { scope: { ownerId: 'auth.userId' } })
 */
import type { ColumnOf, Jsonified, NewRowOf, Page, QueryInput, RowOf, ServerContext, TableName } from './context.js';
import { isDeclarativeKind, SERVER_FUNCTION, type DeclarativeKind } from './kinds.js';

export { SERVER_FUNCTION };

/**
 * A value bound by the server, never by the client: a dotted path into the context
 * (`'auth.userId'`, `'visibility.tenantId'`, `'featureId'`) or a function of it.
 */
export type ContextBinding = string | ((ctx: ServerContext) => unknown);

/** Columns fixed by the server: rows outside the scope are invisible, inserts are stamped. */
export type Scope<T extends TableName = TableName> = Readonly<Partial<Record<ColumnOf<T>, ContextBinding>>>;

export interface QueryRowsOptions<T extends TableName = TableName> {
  scope?: Scope<T>;
  /** Columns a client may filter on (default: all). */
  filterable?: readonly ColumnOf<T>[];
  /** Order when the client gives none (default: newest first). */
  defaultOrder?: { column: ColumnOf<T>; direction?: 'asc' | 'desc' };
  /** Rows per page when the client gives no limit (default 100). */
  defaultLimit?: number;
  /** Largest page a client may ask for (default and at most 1000). */
  maxLimit?: number;
}

export interface WriteRowOptions<T extends TableName = TableName> {
  scope?: Scope<T>;
  /** Columns a client may set (default: every column not in `scope`). */
  fields?: readonly ColumnOf<T>[];
}

export type { DeclarativeKind };

/** The columns a client may set: `fields`, or every column outside `scope`. */
type Writable<T extends TableName, O> = O extends { fields: readonly (infer F)[] }
  ? F & keyof NewRowOf<T>
  : Exclude<keyof NewRowOf<T>, O extends { scope: infer S } ? keyof S : never>;

/** A row as the client receives it. */
type ClientRow<T extends TableName> = Jsonified<RowOf<T>>;

/** What the client passes to each kind. */
export type DeclarativeArgs<Kind extends DeclarativeKind, T extends TableName, O> = Kind extends 'queryRows'
  ? [input?: QueryInput<T, O extends { filterable: readonly (infer F)[] } ? F & ColumnOf<T> : ColumnOf<T>>]
  : Kind extends 'insertRow'
    ? [values: Pick<NewRowOf<T>, Writable<T, O>>]
    : Kind extends 'patchRow'
      ? [id: string, changes: Partial<Pick<NewRowOf<T>, Writable<T, O>>>]
      : [id: string];

/** What the client receives from each kind. */
export type DeclarativeResult<Kind extends DeclarativeKind, T extends TableName> = Kind extends 'queryRows'
  ? Page<ClientRow<T>>
  : Kind extends 'deleteRow'
    ? { deleted: string }
    : ClientRow<T>;

/**
 * What `queryRows`/`insertRow`/`patchRow`/`deleteRow` return: a definition the host compiles to
 * SQL. Its call signature is the client's (a component imports it and calls it); called on the
 * server it throws.
 */
export interface DeclarativeFunction<
  Kind extends DeclarativeKind = DeclarativeKind,
  T extends TableName = TableName,
  O = {},
> {
  (...args: DeclarativeArgs<Kind, T, O>): Promise<DeclarativeResult<Kind, T>>;
  readonly [SERVER_FUNCTION]: Kind;
  readonly table: string;
  readonly options: Kind extends 'queryRows' ? QueryRowsOptions : WriteRowOptions;
}

function declare<Kind extends DeclarativeKind>(kind: Kind, table: string, options: object): DeclarativeFunction<Kind> {
  const fn = () => {
    throw new Error(
      `${kind}('${table}') is compiled to SQL by the host and is not called on the server: call it from the client`,
    );
  };
  return Object.freeze(
    Object.assign(fn, { [SERVER_FUNCTION]: kind, table, options: Object.freeze({ ...options }) }),
  ) as unknown as DeclarativeFunction<Kind>;
}

/**
 * Lists rows. Client args: `[{ where?, orderBy?, limit?, cursor? }]`; result
 * `{ rows, nextCursor }`. Operators: eq, neq, lt, lte, gt, gte, in, isNull, like.
 */
export function queryRows<const T extends TableName, const O extends QueryRowsOptions<T> = {}>(
  table: T,
  options?: O,
): DeclarativeFunction<'queryRows', T, O> {
  return declare('queryRows', table, options ?? {}) as DeclarativeFunction<'queryRows', T, O>;
}

/** Inserts a row. Client args: `[values]`; result: the new row. */
export function insertRow<const T extends TableName, const O extends WriteRowOptions<T> = {}>(
  table: T,
  options?: O,
): DeclarativeFunction<'insertRow', T, O> {
  return declare('insertRow', table, options ?? {}) as DeclarativeFunction<'insertRow', T, O>;
}

/** Changes a row. Client args: `[id, changes]`; result: the row; 404 if absent or out of scope. */
export function patchRow<const T extends TableName, const O extends WriteRowOptions<T> = {}>(
  table: T,
  options?: O,
): DeclarativeFunction<'patchRow', T, O> {
  return declare('patchRow', table, options ?? {}) as DeclarativeFunction<'patchRow', T, O>;
}

/** Deletes a row. Client args: `[id]`; result `{ deleted: id }`; 404 if absent or out of scope. */
export function deleteRow<const T extends TableName, const O extends Pick<WriteRowOptions<T>, 'scope'> = {}>(
  table: T,
  options?: O,
): DeclarativeFunction<'deleteRow', T, O> {
  return declare('deleteRow', table, options ?? {}) as DeclarativeFunction<'deleteRow', T, O>;
}

/** True for a value made by `queryRows`/`insertRow`/`patchRow`/`deleteRow`. */
export function isDeclarative(value: unknown): value is DeclarativeFunction {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    isDeclarativeKind((value as unknown as Record<symbol, unknown>)[SERVER_FUNCTION])
  );
}
