import { HTTPException } from 'hono/http-exception';
import { deleteRow, insertRow, patchRow, queryRows, SERVER_FUNCTION, type DeclarativeFunction } from '../../runtime/declarative.js';
import type { DbRow, FeatureDb, QueryInput, ServerContext } from '../../runtime/server.js';
import type { QueryFn, SqlClient } from '../db/sql-client.js';
import { compileQueryRows } from './compile-query.js';
import { compileDeleteRow, compileInsertRow, compilePatchRow } from './compile-write.js';
import type { CompiledFunction } from './statement.js';
import type { SchemaModel } from './table-model.js';
import { UsageError } from '../usage-error.js';

/** Built-in declarative functions behind `ctx.db`, one per table and kind, unscoped. */
const OPEN = { query: queryRows, insert: insertRow, patch: patchRow, delete: deleteRow } as const;

/**
 * A feature's data: its schema model, its compiled functions (compiled once per schema version)
 * and the database, always entered as the feature's role.
 */
export class FeatureData {
  readonly client: SqlClient;
  #model: SchemaModel;
  #compiled = new WeakMap<DeclarativeFunction, CompiledFunction>();
  #open = new Map<string, DeclarativeFunction>();

  constructor(client: SqlClient, model: SchemaModel) {
    this.client = client;
    this.#model = model;
  }

  get model(): SchemaModel {
    return this.#model;
  }

  /** Switches to a migrated schema; functions compile again on their next call. */
  setModel(model: SchemaModel): void {
    this.#model = model;
    this.#compiled = new WeakMap();
  }

  /** Runs a declarative function for one call. */
  async run(fn: DeclarativeFunction, name: string, ctx: ServerContext, args: readonly unknown[], query?: QueryFn): Promise<unknown> {
    const compiled = this.compile(fn, name);
    const statement = compiled.prepare(args, ctx);
    const rows = query
      ? await query(statement.text, statement.values)
      : await this.client.transaction(this.#model.role, (q) => q(statement.text, statement.values), { readOnly: compiled.readOnly });
    return compiled.result(rows, args);
  }

  /** Compiles (once) a declarative function against the current schema. */
  compile(fn: DeclarativeFunction, name: string): CompiledFunction {
    let compiled = this.#compiled.get(fn);
    if (compiled) return compiled;
    const table = this.#model.tables.get(fn.table);
    const kind = fn[SERVER_FUNCTION];
    const where = `${name} (${kind}("${fn.table}"))`;
    if (!table) throw new UsageError(`${where}: there is no table "${fn.table}" in server/schema.ts (tables: ${[...this.#model.tables.keys()].join(', ') || 'none'})`);
    compiled =
      kind === 'queryRows'
        ? compileQueryRows(table, fn.options, where)
        : kind === 'insertRow'
          ? compileInsertRow(table, fn.options, where)
          : kind === 'patchRow'
            ? compilePatchRow(table, fn.options, where)
            : compileDeleteRow(table, fn.options, where);
    this.#compiled.set(fn, compiled);
    return compiled;
  }

  /**
   * `ctx.db` for one call; `readOnly` refuses writes (isolate queries). With `query`, every
   * operation runs in that open transaction (isolate mutations) instead of one of its own.
   */
  db(ctx: ServerContext, options: { readOnly?: boolean; query?: QueryFn } = {}): FeatureDb {
    const ops = (query?: QueryFn) => ({
      get: async (table: string, id: string) => {
        if (typeof id !== 'string' || !/^[0-9a-f-]{36}$/i.test(id)) return null;
        const result = (await this.run(this.#openFn('query', table), `db.get("${table}")`, ctx, [{ where: { id: { eq: id } }, limit: 1 }], query)) as { rows: DbRow[] };
        return result.rows[0] ?? null;
      },
      query: (table: string, input: QueryInput = {}) => this.run(this.#openFn('query', table), `db.query("${table}")`, ctx, [input], query) as ReturnType<FeatureDb['query']>,
      insert: (table: string, values: Record<string, unknown>) => this.#write('insert', table, ctx, [values], options, query) as ReturnType<FeatureDb['insert']>,
      patch: (table: string, id: string, changes: Record<string, unknown>) => this.#write('patch', table, ctx, [id, changes], options, query) as ReturnType<FeatureDb['patch']>,
      delete: (table: string, id: string) => this.#write('delete', table, ctx, [id], options, query) as ReturnType<FeatureDb['delete']>,
    });
    return {
      ...ops(options.query),
      transaction: (fn) =>
        this.client.transaction(this.#model.role, (query) => fn(ops(guard(query, ctx.signal))), { readOnly: options.readOnly ?? false }),
    };
  }

  #write(kind: 'insert' | 'patch' | 'delete', table: string, ctx: ServerContext, args: unknown[], options: { readOnly?: boolean; query?: QueryFn }, query?: QueryFn): Promise<unknown> {
    if (options.readOnly) return Promise.reject(new HTTPException(500, { message: `ctx.db.${kind} is not allowed here: this function may only read` }));
    return this.run(this.#openFn(kind, table), `db.${kind}("${table}")`, ctx, args, query);
  }

  #openFn(kind: keyof typeof OPEN, table: string): DeclarativeFunction {
    const key = `${kind}:${table}`;
    let fn = this.#open.get(key);
    if (!fn) {
      fn = OPEN[kind](table);
      this.#open.set(key, fn);
    }
    return fn;
  }
}

/** Stops a transaction of a call that timed out or lost its client: the next statement throws. */
function guard(query: QueryFn, signal: AbortSignal): QueryFn {
  return (text, values) => {
    if (signal.aborted) return Promise.reject(new Error('The call was aborted; its transaction rolls back'));
    return query(text, values);
  };
}
