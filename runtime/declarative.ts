/**
 * Declarative CRUD server functions: no JS runs per call, the host compiles each one once to
 * parameterized SQL against the feature's schema.
 *
 * @example
 * // src/rules.server.ts
 * export const listRules = queryRows('rules', { scope: { ownerId: 'auth.userId' } })
 * export const addRule = insertRow('rules', { scope: { ownerId: 'auth.userId' } })
 */
import type { ServerContext } from './context.js';
import { isDeclarativeKind, SERVER_FUNCTION, type DeclarativeKind } from './kinds.js';

export { SERVER_FUNCTION };

/**
 * A value bound by the server, never by the client: a dotted path into the context
 * (`'auth.userId'`, `'visibility.tenantId'`, `'featureId'`) or a function of it.
 */
export type ContextBinding = string | ((ctx: ServerContext) => unknown);

/** Columns fixed by the server: rows outside the scope are invisible, inserts are stamped. */
export type Scope = Readonly<Record<string, ContextBinding>>;

export interface QueryRowsOptions {
  scope?: Scope;
  /** Columns a client may filter on (default: all). */
  filterable?: readonly string[];
  /** Order when the client gives none (default: newest first). */
  defaultOrder?: { column: string; direction?: 'asc' | 'desc' };
  /** Rows per page when the client gives no limit (default 100). */
  defaultLimit?: number;
  /** Largest page a client may ask for (default and at most 1000). */
  maxLimit?: number;
}

export interface WriteRowOptions {
  scope?: Scope;
  /** Columns a client may set (default: every column not in `scope`). */
  fields?: readonly string[];
}

export type { DeclarativeKind };

export interface DeclarativeFunction<Kind extends DeclarativeKind = DeclarativeKind> {
  readonly [SERVER_FUNCTION]: Kind;
  readonly table: string;
  readonly options: Kind extends 'queryRows' ? QueryRowsOptions : WriteRowOptions;
}

function declare<Kind extends DeclarativeKind>(kind: Kind, table: string, options: object): DeclarativeFunction<Kind> {
  return Object.freeze({
    [SERVER_FUNCTION]: kind,
    table,
    options: Object.freeze({ ...options }),
  }) as DeclarativeFunction<Kind>;
}

/**
 * Lists rows. Client args: `[{ where?, orderBy?, limit?, cursor? }]`; result
 * `{ rows, nextCursor }`. Operators: eq, neq, lt, lte, gt, gte, in, isNull, like.
 */
export function queryRows(table: string, options: QueryRowsOptions = {}): DeclarativeFunction<'queryRows'> {
  return declare('queryRows', table, options);
}

/** Inserts a row. Client args: `[values]`; result: the new row. */
export function insertRow(table: string, options: WriteRowOptions = {}): DeclarativeFunction<'insertRow'> {
  return declare('insertRow', table, options);
}

/** Changes a row. Client args: `[id, changes]`; result: the row; 404 if absent or out of scope. */
export function patchRow(table: string, options: WriteRowOptions = {}): DeclarativeFunction<'patchRow'> {
  return declare('patchRow', table, options);
}

/** Deletes a row. Client args: `[id]`; result `{ deleted: id }`; 404 if absent or out of scope. */
export function deleteRow(
  table: string,
  options: Pick<WriteRowOptions, 'scope'> = {},
): DeclarativeFunction<'deleteRow'> {
  return declare('deleteRow', table, options);
}

/** True for a value made by `queryRows`/`insertRow`/`patchRow`/`deleteRow`. */
export function isDeclarative(value: unknown): value is DeclarativeFunction {
  return (
    typeof value === 'object' &&
    value !== null &&
    isDeclarativeKind((value as Record<symbol, unknown>)[SERVER_FUNCTION])
  );
}
