import {
  deleteRow,
  insertRow,
  patchRow,
  queryRows,
  SERVER_FUNCTION,
  type DeclarativeFunction,
} from '../../runtime/declarative.js';
import { RequestError } from '../../runtime/request-error.js';
import type { DbRow, FeatureDb, QueryInput, ServerContext } from '../../runtime/server.js';
import type { QueryFn, SqlClient } from './sql-client.js';
import { TransactionTimeoutError } from './transaction-budget.js';
import { compileQueryRows } from './compile-query.js';
import { compileDeleteRow, compileInsertRow, compilePatchRow } from './compile-write.js';
import type { CompiledFunction } from './statement.js';
import type { SchemaModel } from './table-model.js';
import { UsageError } from '../common/usage-error.js';
import { readSetOf } from './read-set.js';

/** Built-in declarative functions behind `ctx.db`, one per table and kind, unscoped. */
const OPEN = { query: queryRows, insert: insertRow, patch: patchRow, delete: deleteRow } as const;

const NESTED_HINT =
  ' This call also used ctx.db outside the transaction while it was open: on PGlite such a call waits for ' +
  'the transaction to end, so inside ctx.db.transaction(async (tx) => ...) use tx, not ctx.db.';

/** What one committed transaction changed: the feature's tables it wrote (`_storage` included). */
export interface CommittedChange {
  readonly tables: ReadonlySet<string>;
  /** The writing caller's tenant; `undefined` when the write was not a call's (every tenant). */
  readonly tenantId?: string | null;
}

export interface FeatureDataOptions {
  /** `db.transactionTimeoutMs` of feature.json; absent: the database's default (PGlite 1 s, PostgreSQL 5 s). */
  transactionTimeoutMs?: number;
}

/**
 * A feature's data: its schema model, its compiled functions (compiled once per schema version)
 * and the database, always entered as the feature's role.
 */
export class FeatureData {
  /** The database, with this feature's transaction budget for every transaction opened through it. */
  readonly client: SqlClient;
  /** The feature's transaction budget in ms (`db.transactionTimeoutMs`); undefined: the database's default. */
  transactionTimeoutMs: number | undefined;
  #model: SchemaModel;
  #compiled = new WeakMap<DeclarativeFunction, CompiledFunction>();
  #open = new Map<string, DeclarativeFunction>();
  #listeners = new Set<(change: CommittedChange) => unknown>();

  constructor(client: SqlClient, model: SchemaModel, options: FeatureDataOptions = {}) {
    this.transactionTimeoutMs = options.transactionTimeoutMs;
    this.client = featureClient(
      client,
      () => this.transactionTimeoutMs,
      (change) => this.#committed(change),
    );
    this.#model = model;
  }

  /**
   * The write path: every write of every kind (declarative functions, `ctx.db` in plain
   * functions and isolates, the settings document) runs in a transaction of `client`, and each one
   * that commits having written is told here, after the commit. Returns the unsubscribe.
   *
   * @example
   * const stop = data.onCommit(({ tables }) => rerunQueriesReading(tables))
   */
  onCommit(listener: (change: CommittedChange) => unknown): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #committed(change: CommittedChange): void {
    for (const listener of this.#listeners) {
      // A listener's failure is its own: the write is committed whatever it does.
      try {
        const result: unknown = listener(change);
        if (result instanceof Promise) result.catch(() => {});
      } catch {
        // See above.
      }
    }
  }

  get model(): SchemaModel {
    return this.#model;
  }

  /** Switches to a migrated schema; functions compile again on their next call. */
  setModel(model: SchemaModel): void {
    this.#model = model;
    this.#compiled = new WeakMap();
  }

  /** Runs a declarative function for one call: in `query`'s transaction, or in one of its own. */
  async run(
    fn: DeclarativeFunction,
    name: string,
    ctx: ServerContext,
    args: readonly unknown[],
    query?: QueryFn,
    signal?: AbortSignal,
  ): Promise<unknown> {
    const compiled = this.compile(fn, name);
    const statement = compiled.prepare(args, ctx);
    const { text, values } = statement;
    const reads = readSetOf(ctx);
    if (reads) {
      if (compiled.readOnly) reads.tables.add(fn.table);
      else reads.wrote = true;
    }
    const options = { readOnly: compiled.readOnly, signal, tenantId: ctx.visibility?.tenantId };
    const rows = query
      ? await query(text, values)
      : this.client.statement
        ? await this.client.statement(this.#model.role, text, values, options)
        : await this.client.transaction(this.#model.role, (q) => q(text, values), options);
    return compiled.result(rows, args);
  }

  /** Compiles (once) a declarative function against the current schema. */
  compile(fn: DeclarativeFunction, name: string): CompiledFunction {
    let compiled = this.#compiled.get(fn);
    if (compiled) return compiled;
    const table = this.#model.tables.get(fn.table);
    const kind = fn[SERVER_FUNCTION];
    const where = `${name} (${kind}("${fn.table}"))`;
    if (!table)
      throw new UsageError(
        `${where}: there is no table "${fn.table}" in server/schema.ts (tables: ${[...this.#model.tables.keys()].join(', ') || 'none'})`,
      );
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
    // Once a transaction of this call overran its budget, the call's other database work is refused:
    // on PGlite a ctx.db call made inside ctx.db.transaction waits for that very transaction, and must
    // not run (and commit) on its own after the transaction was rolled back.
    let stop: AbortController | null = null;
    let open = 0;
    let usedInside = false;
    const run = (kind: keyof typeof OPEN, table: string, name: string, args: unknown[], query?: QueryFn) => {
      if (stop?.signal.aborted) return Promise.reject(stop.signal.reason);
      if (!query && open > 0) usedInside = true;
      return this.run(this.#openFn(kind, table), `db.${name}("${table}")`, ctx, args, query, stop?.signal);
    };
    const write = (kind: 'insert' | 'patch' | 'delete', table: string, args: unknown[], query?: QueryFn) => {
      if (!options.readOnly) return run(kind, table, kind, args, query);
      return Promise.reject(new RequestError(500, `ctx.db.${kind} is not allowed here: this function may only read`));
    };
    const ops = (query?: QueryFn) => ({
      get: async (table: string, id: string) => {
        if (typeof id !== 'string' || !/^[0-9a-f-]{36}$/i.test(id)) return null;
        const result = (await run('query', table, 'get', [{ where: { id: { eq: id } }, limit: 1 }], query)) as {
          rows: DbRow[];
        };
        return result.rows[0] ?? null;
      },
      query: (table: string, input: QueryInput = {}) =>
        run('query', table, 'query', [input], query) as ReturnType<FeatureDb['query']>,
      insert: (table: string, values: Record<string, unknown>) =>
        write('insert', table, [values], query) as ReturnType<FeatureDb['insert']>,
      patch: (table: string, id: string, changes: Record<string, unknown>) =>
        write('patch', table, [id, changes], query) as ReturnType<FeatureDb['patch']>,
      delete: (table: string, id: string) => write('delete', table, [id], query) as ReturnType<FeatureDb['delete']>,
    });
    const transaction: FeatureDb['transaction'] = (fn) => {
      const stopped = (stop ??= new AbortController());
      if (stopped.signal.aborted) return Promise.reject(stopped.signal.reason);
      if (open > 0) usedInside = true;
      open++;
      // The caller hears of an overrun at once; the client's own promise waits for fn to settle.
      return new Promise((resolve, reject) => {
        const onExpire = (error: TransactionTimeoutError) => {
          const reason = usedInside ? new TransactionTimeoutError(error.timeoutMs, NESTED_HINT) : error;
          stopped.abort(reason);
          reject(reason);
        };
        const readOnly = options.readOnly ?? false;
        const body = (query: QueryFn) => fn(ops(guard(query, ctx.signal)));
        this.client
          .transaction(this.#model.role, body, {
            readOnly,
            signal: stopped.signal,
            onExpire,
            tenantId: ctx.visibility?.tenantId,
          })
          .finally(() => open--)
          .then(resolve, reject);
      });
    };
    return { ...ops(options.query), transaction };
  }

  #openFn(kind: keyof typeof OPEN, table: string): DeclarativeFunction {
    const key = `${kind}:${table}`;
    let fn = this.#open.get(key);
    if (!fn) {
      fn = (OPEN[kind] as (table: string) => DeclarativeFunction)(table);
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

/** The table a statement writes, for the statements this host generates (compile-write, storage). */
const WRITE_TARGET = /^(?:INSERT INTO|UPDATE|DELETE FROM) "(?:[^"]|"")+"\."((?:[^"]|"")+)"/;

/**
 * `client` with the feature's budget as the default of every transaction, whoever opens it, and
 * the one place its writes are seen: the tables a transaction wrote are reported once it commits.
 */
function featureClient(
  client: SqlClient,
  timeoutMs: () => number | undefined,
  committed: (change: CommittedChange) => void,
): SqlClient {
  const wrapped: SqlClient = {
    engine: client.engine,
    location: client.location,
    get transactionTimeoutMs() {
      return timeoutMs() ?? client.transactionTimeoutMs;
    },
    async transaction(role, fn, options = {}) {
      const settings = { ...options, timeoutMs: options.timeoutMs ?? timeoutMs() };
      // A read-only transaction cannot write: reads (the hot path) go through untouched.
      if (options.readOnly) return client.transaction(role, fn, settings);
      const tables = new Set<string>();
      const result = await client.transaction(
        role,
        (query) =>
          fn((text, values) =>
            query(text, values).then((rows) => {
              const target = WRITE_TARGET.exec(text);
              if (target) tables.add(target[1]!.replaceAll('""', '"'));
              return rows;
            }),
          ),
        settings,
      );
      if (tables.size > 0) committed({ tables, tenantId: options.tenantId });
      return result;
    },
    adminTransaction: (fn) => client.adminTransaction(fn),
    close: () => client.close(),
  };
  if (client.statement) {
    const statement = client.statement.bind(client);
    wrapped.statement = async (role, text, values, options = {}) => {
      const rows = await statement(role, text, values, { ...options, timeoutMs: options.timeoutMs ?? timeoutMs() });
      const target = options.readOnly ? null : WRITE_TARGET.exec(text);
      if (target) committed({ tables: new Set([target[1]!.replaceAll('""', '"')]), tenantId: options.tenantId });
      return rows;
    };
  }
  return wrapped;
}
