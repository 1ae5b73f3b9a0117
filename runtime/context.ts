/**
 * The types of a call's context, as every kind of server function sees it, and of its result on
 * the client. A leaf module: the SDK modules (`declarative`, `handlers`, `server`) build on it.
 */

/** What the host knows about who is calling and where. */
export interface Visibility {
  featureToggles: string[];
  tenantId: string | null;
}

/** Filters, order and paging of `ctx.db.query` (the same as a `queryRows` client sends). */
export interface QueryInput {
  where?: Record<string, Record<string, unknown>>;
  orderBy?: { column: string; direction?: 'asc' | 'desc' };
  limit?: number;
  cursor?: string;
}

/** A row: the table's columns plus `id` and `createdAt` (ISO string). */
export type DbRow = Record<string, unknown> & { id: string; createdAt: string };

/**
 * `ctx.db`: the feature's own tables (from `server/schema.ts`) and nothing else.
 *
 * @example
 * const rule = await ctx.db.insert('rules', { text: 'be kind', votes: 0 })
 * const { rows } = await ctx.db.query('rules', { where: { votes: { gte: 1 } }, limit: 10 })
 */
export interface FeatureDb {
  get(table: string, id: string): Promise<DbRow | null>;
  query(table: string, input?: QueryInput): Promise<{ rows: DbRow[]; nextCursor: string | null }>;
  insert(table: string, values: Record<string, unknown>): Promise<DbRow>;
  patch(table: string, id: string, changes: Record<string, unknown>): Promise<DbRow>;
  delete(table: string, id: string): Promise<{ deleted: string }>;
  /** Runs `fn` in one transaction: all of its writes, or none if it throws. */
  transaction<T>(fn: (db: Omit<FeatureDb, 'transaction'>) => Promise<T>): Promise<T>;
}

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
export type Jsonified<T> = T extends { toJSON(): infer J }
  ? Jsonified<J>
  : T extends string | number | boolean | null
    ? T
    : T extends undefined | ((...args: never[]) => unknown) | symbol
      ? null
      : T extends readonly (infer E)[]
        ? Jsonified<E>[]
        : T extends object
          ? {
              [
                K in keyof T as T[K] extends undefined | ((...args: never[]) => unknown) | symbol ? never : K
              ]: Jsonified<T[K]>;
            }
          : never;
