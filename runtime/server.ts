/**
 * Server SDK: the types a `*.server.*` module uses. Import it only from server modules.
 *
 * @example
 * import type { ServerContext } from '@favn/vite-plugin-server-fns/server'
 * export async function getData(ctx: ServerContext) { return { user: ctx.auth.userId } }
 */

import { RequestError } from './request-error.js';

export type {
  CallContext,
  ClientFunction,
  ColumnOf,
  DbReader,
  DbRow,
  DbWriter,
  FeatureDb,
  Filter,
  Jsonified,
  NewRowOf,
  Page,
  QueryInput,
  Register,
  RegisteredSchema,
  RowOf,
  ServerContext,
  TableName,
  Visibility,
} from './context.js';
export { RequestError } from './request-error.js';
export type { DeclarativeKind, FunctionKind } from './kinds.js';
export {
  defineSchema,
  defineTable,
  type Row,
  type SchemaDefinition,
  type StorageOf,
  type TableDefinition,
} from './schema.js';
export type { ClientArgs, ClientResult, PlainClientArgs, RegisteredStorage } from './client-types.js';
export { v, type Infer, type Validator } from './validators.js';
export {
  queryRows,
  insertRow,
  patchRow,
  deleteRow,
  type DeclarativeArgs,
  type DeclarativeFunction,
  type DeclarativeResult,
  type QueryRowsOptions,
  type WriteRowOptions,
} from './declarative.js';
export {
  query,
  mutation,
  action,
  type ActionCtx,
  type FetchInit,
  type FetchResponse,
  type HandlerFunction,
  type HandlerKind,
  type MutationCtx,
  type QueryCtx,
  type ReadOnlyDb,
} from './handlers.js';

/**
 * Throws an error whose message and status reach the client (4xx always, 5xx only in dev).
 *
 * @example
 * if (!ctx.auth.userId) throw httpError(403, 'Sign in to save')
 */
export function httpError(status: number, message: string): RequestError {
  return new RequestError(status, message);
}
