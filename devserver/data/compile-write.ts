import type { WriteRowOptions } from '../../runtime/declarative.js';
import { RequestError } from '../../runtime/request-error.js';
import type { Issue } from '../../runtime/validators.js';
import { UsageError } from '../common/usage-error.js';
import {
  bindScope,
  checkScope,
  invalidArguments,
  isPlainObject,
  Params,
  toClientRow,
  type CompiledFunction,
} from './statement.js';
import type { ColumnModel, TableModel } from './table-model.js';

/**
 * Compiles `insertRow(table, options)`. Client args: `[values]`. Scope columns are stamped from
 * the context; a client that sends one, or `id`/`createdAt`, gets 422.
 */
export function compileInsertRow(table: TableModel, options: WriteRowOptions, where: string): CompiledFunction {
  const scope = checkScope(table, options.scope, where);
  const settable = settableColumns(table, options, scope, where);
  return {
    kind: 'insertRow',
    readOnly: false,
    prepare(args, ctx) {
      const values = readValues(table, args, 0, settable, scope, 'insert');
      const params = new Params();
      const names: string[] = [];
      const placeholders: string[] = [];
      const issues = [...settable.values()].flatMap((column) =>
        column.validator.check(own(values, column.name), ['args', 0, column.name]),
      );
      if (issues.length) throw invalidArguments(issues);
      for (const column of settable.values()) {
        const value = own(values, column.name);
        // Absent, or null in a nullable column: SQL NULL. A required JSON column stores JSON null.
        if (value === undefined || (value === null && column.nullable)) continue;
        names.push(column.sql);
        placeholders.push(params.add(value, column));
      }
      for (const [column, binding] of scope) {
        names.push(column.sql);
        placeholders.push(params.add(bindScope(column, binding, ctx), column));
      }
      const text = names.length
        ? `INSERT INTO ${table.sql} (${names.join(', ')}) VALUES (${placeholders.join(', ')}) RETURNING *`
        : `INSERT INTO ${table.sql} DEFAULT VALUES RETURNING *`;
      return { text, values: params.values };
    },
    result: (rows) => toClientRow(rows[0] ?? {}),
  };
}

/** Compiles `patchRow(table, options)`. Client args: `[id, changes]`. */
export function compilePatchRow(table: TableModel, options: WriteRowOptions, where: string): CompiledFunction {
  const scope = checkScope(table, options.scope, where);
  const settable = settableColumns(table, options, scope, where);
  return {
    kind: 'patchRow',
    readOnly: false,
    prepare(args, ctx) {
      const id = readId(table, args);
      const changes = readValues(table, args, 1, settable, scope, 'patch');
      const params = new Params();
      const sets: string[] = [];
      const issues = Object.entries(changes).flatMap(([name, value]) =>
        settable.get(name)!.validator.check(value, ['args', 1, name]),
      );
      if (issues.length) throw invalidArguments(issues);
      for (const [name, value] of Object.entries(changes)) {
        const column = settable.get(name)!;
        sets.push(`${column.sql} = ${value === null && column.nullable ? 'NULL' : params.add(value, column)}`);
      }
      if (sets.length === 0)
        throw invalidArguments([{ path: ['args', 1], message: 'expected at least one field to change' }]);
      const conditions = [
        `"id" = ${params.add(id)}`,
        ...scope.map(([c, b]) => `${c.sql} = ${params.add(bindScope(c, b, ctx), c)}`),
      ];
      return {
        text: `UPDATE ${table.sql} SET ${sets.join(', ')} WHERE ${conditions.join(' AND ')} RETURNING *`,
        values: params.values,
      };
    },
    result: (rows, args) => toClientRow(rows[0] ?? notFound(table, args[0])),
  };
}

/** Compiles `deleteRow(table, options)`. Client args: `[id]`. */
export function compileDeleteRow(table: TableModel, options: WriteRowOptions, where: string): CompiledFunction {
  const scope = checkScope(table, options.scope, where);
  return {
    kind: 'deleteRow',
    readOnly: false,
    prepare(args, ctx) {
      if (args.length !== 1)
        throw invalidArguments([{ path: ['args'], message: `expected [id], got ${args.length} arguments` }]);
      const id = readId(table, args);
      const params = new Params();
      const conditions = [
        `"id" = ${params.add(id)}`,
        ...scope.map(([c, b]) => `${c.sql} = ${params.add(bindScope(c, b, ctx), c)}`),
      ];
      return {
        text: `DELETE FROM ${table.sql} WHERE ${conditions.join(' AND ')} RETURNING "id"`,
        values: params.values,
      };
    },
    result: (rows, args) => (rows[0] ? { deleted: rows[0].id } : notFound(table, args[0])),
  };
}

function settableColumns(
  table: TableModel,
  options: WriteRowOptions,
  scope: [ColumnModel, unknown][],
  where: string,
): Map<string, ColumnModel> {
  const scoped = new Set(scope.map(([c]) => c.name));
  const names =
    options.fields ?? [...table.columns.values()].filter((c) => !c.system && !scoped.has(c.name)).map((c) => c.name);
  const settable = new Map<string, ColumnModel>();
  for (const name of names) {
    const column = table.columns.get(name);
    if (!column || column.system || scoped.has(name))
      throw new UsageError(`${where}: field "${name}" cannot be set by clients of "${table.name}"`);
    settable.set(name, column);
  }
  return settable;
}

function readValues(
  table: TableModel,
  args: readonly unknown[],
  index: number,
  settable: Map<string, ColumnModel>,
  scope: [ColumnModel, unknown][],
  verb: string,
): Record<string, unknown> {
  const values = args[index];
  if (args.length !== index + 1)
    throw invalidArguments([
      { path: ['args'], message: `expected ${index ? '[id, changes]' : '[values]'}, got ${args.length} arguments` },
    ]);
  if (!isPlainObject(values))
    throw invalidArguments([{ path: ['args', index], message: `expected an object of "${table.name}" fields` }]);
  const issues: Issue[] = [];
  const scoped = new Set(scope.map(([c]) => c.name));
  for (const key of Object.keys(values)) {
    if (settable.has(key)) continue;
    const why =
      table.columns.get(key)?.system || scoped.has(key)
        ? 'is set by the server'
        : table.columns.has(key)
          ? `cannot be set by a client ${verb}`
          : 'unknown field';
    issues.push({ path: ['args', index, key], message: why });
  }
  if (issues.length) throw invalidArguments(issues);
  return values;
}

function readId(table: TableModel, args: readonly unknown[]): string {
  const issues = table.columns.get('id')!.validator.check(args[0], ['args', 0]);
  if (issues.length) throw invalidArguments(issues);
  return args[0] as string;
}

/** A field of the request body itself, never one inherited from Object.prototype. */
function own(values: Record<string, unknown>, name: string): unknown {
  return Object.hasOwn(values, name) ? values[name] : undefined;
}

function notFound(table: TableModel, id: unknown): never {
  const which = `no "${table.name}" row with id ${JSON.stringify(id)}`;
  throw new RequestError(404, `Row not found: ${which} that this caller may change`);
}
