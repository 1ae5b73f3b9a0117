import type { QueryRowsOptions } from '../../runtime/declarative.js';
import type { Issue } from '../../runtime/validators.js';
import { UsageError } from '../common/usage-error.js';
import {
  badQuery,
  bindScope,
  checkScope,
  invalidArguments,
  isPlainObject,
  Params,
  toClientRow,
  type CompiledFunction,
} from './statement.js';
import { storableIssues, type ColumnModel, type TableModel } from './table-model.js';

/** Operators a client may use in `where`, and nothing else. */
export const OPERATORS = ['eq', 'neq', 'lt', 'lte', 'gt', 'gte', 'in', 'isNull', 'like'] as const;
type Operator = (typeof OPERATORS)[number];
const COMPARE: Record<string, string> = { eq: '=', neq: '<>', lt: '<', lte: '<=', gt: '>', gte: '>=' };
const MAX_IN = 1000;
export const HARD_MAX_LIMIT = 1000;
const QUERY_KEYS = new Set(['where', 'orderBy', 'limit', 'cursor']);

/**
 * Compiles `queryRows(table, options)`. Client args: `[{ where?, orderBy?, limit?, cursor? }]`.
 * Pagination is by keyset on (order column, id), so pages stay stable under inserts.
 *
 * @example
 * compileQueryRows(model.tables.get('rules'), { scope: { ownerId: 'auth.userId' } }, 'listRules')
 */
export function compileQueryRows(table: TableModel, options: QueryRowsOptions, where: string): CompiledFunction {
  const scope = checkScope(table, options.scope, where);
  const scoped = new Set(scope.map(([c]) => c.name));
  const filterable = new Set(options.filterable ?? [...table.columns.keys()]);
  for (const name of filterable)
    if (!table.columns.has(name))
      throw new UsageError(`${where}: filterable column "${name}" is not a column of "${table.name}"`);
  const maxLimit = options.maxLimit ?? HARD_MAX_LIMIT;
  const defaultLimit = options.defaultLimit ?? Math.min(100, maxLimit);
  if (!Number.isInteger(maxLimit) || maxLimit < 1 || maxLimit > HARD_MAX_LIMIT)
    throw new UsageError(`${where}: maxLimit must be an integer from 1 to ${HARD_MAX_LIMIT}`);
  if (!Number.isInteger(defaultLimit) || defaultLimit < 1 || defaultLimit > maxLimit)
    throw new UsageError(`${where}: defaultLimit must be an integer from 1 to maxLimit`);
  const defaultOrder = {
    column: options.defaultOrder?.column ?? 'createdAt',
    direction: options.defaultOrder?.direction ?? 'desc',
  };
  orderColumn(table, defaultOrder.column, (m) => new UsageError(`${where}: defaultOrder ${m}`));
  const select = `SELECT * FROM ${table.sql}`;

  return {
    kind: 'queryRows',
    readOnly: true,
    prepare(args, ctx) {
      if (args.length > 1)
        throw badQuery(`queryRows takes one argument { where, orderBy, limit, cursor }, got ${args.length}`);
      const input = args[0] ?? {};
      if (!isPlainObject(input)) throw badQuery('the argument must be an object { where, orderBy, limit, cursor }');
      for (const key of Object.keys(input))
        if (!QUERY_KEYS.has(key))
          throw badQuery(`unknown key ${JSON.stringify(key)} (allowed: where, orderBy, limit, cursor)`);

      const params = new Params();
      const conditions: string[] = [];
      for (const [column, binding] of scope)
        conditions.push(`${column.sql} = ${params.add(bindScope(column, binding, ctx), column)}`);
      if (input.where !== undefined)
        conditions.push(...whereConditions(table, input.where, filterable, scoped, params));

      const order = readOrder(table, input.orderBy, defaultOrder);
      const dir = order.direction === 'asc' ? 'ASC' : 'DESC';
      if (input.cursor !== undefined) {
        const [value, id] = readCursor(input.cursor, order.column);
        const op = order.direction === 'asc' ? '>' : '<';
        conditions.push(`(${order.column.sql}, "id") ${op} (${params.add(value, order.column)}, ${params.add(id)})`);
      }
      const limit = readLimit(input.limit, defaultLimit, maxLimit);
      // One row more than asked tells whether there is a next page.
      const text = `${select}${conditions.length ? ` WHERE ${conditions.join(' AND ')}` : ''} ORDER BY ${order.column.sql} ${dir}, "id" ${dir} LIMIT ${params.add(limit + 1)}`;
      return { text, values: params.values };
    },
    result(rows, args) {
      const input = (args[0] ?? {}) as { orderBy?: unknown; limit?: unknown };
      const limit = readLimit(input.limit, defaultLimit, maxLimit);
      const order = readOrder(table, input.orderBy, defaultOrder);
      const page = rows.slice(0, limit).map(toClientRow);
      const last = rows.length > limit ? rows[limit - 1] : undefined;
      return { rows: page, nextCursor: last ? writeCursor(last[order.column.name], last.id) : null };
    },
  };
}

function whereConditions(
  table: TableModel,
  where: unknown,
  filterable: Set<string>,
  scoped: Set<string>,
  params: Params,
): string[] {
  if (!isPlainObject(where)) throw badQuery('"where" must be an object like { "votes": { "gt": 3 } }');
  const conditions: string[] = [];
  for (const [name, ops] of Object.entries(where)) {
    const column = table.columns.get(name);
    if (!column || !Object.hasOwn(where, name))
      throw badQuery(
        `unknown column ${JSON.stringify(name)} in "where" (columns: ${[...table.columns.keys()].join(', ')})`,
      );
    if (!filterable.has(name) || scoped.has(name))
      throw badQuery(`column ${JSON.stringify(name)} cannot be filtered by the client`);
    if (!isPlainObject(ops) || Object.keys(ops).length === 0)
      throw badQuery(
        `"where.${name}" must be an object of operators like { "eq": ... } (operators: ${OPERATORS.join(', ')})`,
      );
    for (const [op, value] of Object.entries(ops)) {
      if (!(OPERATORS as readonly string[]).includes(op))
        throw badQuery(`unknown operator ${JSON.stringify(op)} on "${name}" (operators: ${OPERATORS.join(', ')})`);
      conditions.push(condition(column, op as Operator, value, params));
    }
  }
  return conditions;
}

function condition(column: ColumnModel, op: Operator, value: unknown, params: Params): string {
  const path = ['args', 0, 'where', column.name, op];
  if (op === 'isNull') {
    if (typeof value !== 'boolean')
      throw invalidArguments([{ path, message: `expected boolean, got ${typeof value}` }]);
    return `${column.sql} IS ${value ? '' : 'NOT '}NULL`;
  }
  if (column.json) throw badQuery(`column "${column.name}" holds JSON: only "isNull" can filter it`);
  const inner = column.validator.kind === 'optional' ? column.validator.inner! : column.validator;
  if (op === 'in') {
    if (!Array.isArray(value) || value.length > MAX_IN)
      throw invalidArguments([{ path, message: `expected an array of at most ${MAX_IN} values` }]);
    const issues: Issue[] = value.flatMap((item, i) => inner.check(item, [...path, i]));
    if (issues.length) throw invalidArguments(issues);
    return `${column.sql} = ANY(${params.add(value)})`;
  }
  if (op === 'like') {
    if (column.sqlType !== 'text') throw badQuery(`"like" only applies to text columns, not "${column.name}"`);
    if (typeof value !== 'string') throw invalidArguments([{ path, message: `expected string, got ${typeof value}` }]);
    const issues = storableIssues(value, path);
    if (issues.length) throw invalidArguments(issues);
    return `${column.sql} LIKE ${params.add(value)}`;
  }
  const issues =
    value === null ? [{ path, message: 'expected a value; use "isNull" for null' }] : inner.check(value, path);
  if (issues.length) throw invalidArguments(issues);
  return `${column.sql} ${COMPARE[op]} ${params.add(value, column)}`;
}

function orderColumn(table: TableModel, name: unknown, error: (m: string) => Error): ColumnModel {
  const column = typeof name === 'string' ? table.columns.get(name) : undefined;
  if (!column)
    throw error(`names unknown column ${JSON.stringify(name)} (columns: ${[...table.columns.keys()].join(', ')})`);
  // NULLs and JSON do not order in a way keyset pagination can rely on.
  if (column.nullable || column.json) throw error(`column "${column.name}" is optional or JSON and cannot order rows`);
  return column;
}

function readOrder(
  table: TableModel,
  orderBy: unknown,
  fallback: { column: string; direction: string },
): { column: ColumnModel; direction: string } {
  if (orderBy === undefined) return { column: table.columns.get(fallback.column)!, direction: fallback.direction };
  if (!isPlainObject(orderBy)) throw badQuery('"orderBy" must be { "column": "...", "direction": "asc" | "desc" }');
  for (const key of Object.keys(orderBy))
    if (key !== 'column' && key !== 'direction') throw badQuery(`unknown key ${JSON.stringify(key)} in "orderBy"`);
  const direction = orderBy.direction ?? 'asc';
  if (direction !== 'asc' && direction !== 'desc') throw badQuery('"orderBy.direction" must be "asc" or "desc"');
  return { column: orderColumn(table, orderBy.column, (m) => badQuery(`"orderBy" ${m}`)), direction };
}

function readLimit(limit: unknown, fallback: number, max: number): number {
  if (limit === undefined) return fallback;
  if (!Number.isInteger(limit) || (limit as number) < 1 || (limit as number) > max) {
    throw invalidArguments([
      { path: ['args', 0, 'limit'], message: `expected an integer from 1 to ${max}, got ${JSON.stringify(limit)}` },
    ]);
  }
  return limit as number;
}

function writeCursor(value: unknown, id: unknown): string {
  const v = value instanceof Date ? value.toISOString() : value;
  return Buffer.from(JSON.stringify([v, id])).toString('base64url');
}

function readCursor(cursor: unknown, column: ColumnModel): [unknown, string] {
  const invalid = () => badQuery('"cursor" is not a cursor this function returned');
  // Long text order values make long cursors; the request body limit bounds them anyway.
  if (typeof cursor !== 'string' || cursor.length > 1024 * 1024) throw invalid();
  let decoded: unknown;
  try {
    decoded = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw invalid();
  }
  if (!Array.isArray(decoded) || decoded.length !== 2) throw invalid();
  const [value, id] = decoded as [unknown, unknown];
  if (
    column.validator.check(value).length > 0 ||
    typeof id !== 'string' ||
    !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id)
  )
    throw invalid();
  return [value, id];
}
