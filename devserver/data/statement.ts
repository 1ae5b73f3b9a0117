import type { ContextBinding, Scope } from '../../runtime/declarative.js';
import type { DeclarativeKind } from '../../runtime/kinds.js';
import { RequestError } from '../../runtime/request-error.js';
import type { ServerContext } from '../../runtime/server.js';
import { formatIssues, type Issue } from '../../runtime/validators.js';
import { UsageError } from '../common/usage-error.js';
import type { ColumnModel, TableModel } from './table-model.js';

/** One parameterized statement: values are only ever bound, never spliced. */
export interface Statement {
  text: string;
  values: unknown[];
}

/** A declarative function compiled once: per call it only checks input and binds values. */
export interface CompiledFunction {
  readonly kind: DeclarativeKind;
  readonly readOnly: boolean;
  prepare(args: readonly unknown[], ctx: ServerContext): Statement;
  /** Turns the returned rows into the call's JSON result (throws 404 where a row was required). */
  result(rows: Record<string, unknown>[], args: readonly unknown[]): unknown;
}

/** Collects bound values and hands out `$n` placeholders. */
export class Params {
  readonly values: unknown[] = [];
  add(value: unknown, column?: ColumnModel): string {
    const json = column?.json ?? false;
    this.values.push(json ? JSON.stringify(value) : value);
    return `$${this.values.length}${json ? '::jsonb' : ''}`;
  }
}

/** 400: the request's shape is wrong (unknown column, operator, key). */
export function badQuery(message: string): RequestError {
  return new RequestError(400, `Invalid query: ${message}`);
}

/** 422: a value does not fit its column or argument. */
export function invalidArguments(issues: readonly Issue[]): RequestError {
  return RequestError.of('invalidArguments', formatIssues(issues));
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    Object.getPrototypeOf(value) === Object.prototype
  );
}

/** Checks server-fixed scope columns at compile time. */
export function checkScope(
  table: TableModel,
  scope: Scope | undefined,
  where: string,
): [ColumnModel, ContextBinding][] {
  return (Object.entries(scope ?? {}) as [string, ContextBinding][]).map(([name, binding]) => {
    const column = table.columns.get(name);
    if (!column || column.system)
      throw new UsageError(`${where}: scope column "${name}" is not a column of "${table.name}"`);
    if (typeof binding !== 'function' && !/^[A-Za-z]+(\.[A-Za-z]+)*$/.test(binding))
      throw new UsageError(`${where}: scope "${name}" must be a context path like "auth.userId" or a function of ctx`);
    return [column, binding];
  });
}

/** The value a scope binding takes for this call; a missing identity is 401. */
export function bindScope(column: ColumnModel, binding: ContextBinding, ctx: ServerContext): unknown {
  const value =
    typeof binding === 'function'
      ? binding(ctx)
      : binding.split('.').reduce<unknown>((obj, key) => (isRecordLike(obj) ? obj[key] : undefined), ctx);
  if (value === undefined || value === null) {
    const what = typeof binding === 'string' ? binding : 'a context value';
    throw RequestError.of('unauthorized', `this function is scoped by ${what}, which this caller does not have`);
  }
  return value;
}

function isRecordLike(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

/** Row as the client receives it: timestamps as ISO strings. */
export function toClientRow(row: Record<string, unknown>): Record<string, unknown> {
  const createdAt = row.createdAt;
  if (createdAt instanceof Date) return { ...row, createdAt: createdAt.toISOString() };
  return row;
}
