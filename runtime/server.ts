/**
 * Server SDK: the types a `*.server.*` module uses. Import it only from server modules.
 *
 * @example
 * import type { ServerContext } from '@favn/vite-plugin-server-fns/server'
 * export async function getData(ctx: ServerContext) { return { user: ctx.auth.userId } }
 */

/** What the host knows about who is calling and where. */
export interface Visibility {
  featureToggles: string[];
  tenantId: string | null;
}

/** The first argument of every server function. */
export interface ServerContext {
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
  /** Secrets from the host's secret store (`.env.local` in dev). Never sent to the client. */
  secrets: Readonly<Record<string, string>>;
  /** Aborted when the call times out or the client disconnects. */
  signal: AbortSignal;
}

/**
 * Throws an error whose message and status reach the client (4xx always, 5xx only in dev).
 *
 * @example
 * if (!ctx.auth.userId) throw httpError(403, 'Sign in to save')
 */
export function httpError(status: number, message: string): Error & { statusCode: number } {
  return Object.assign(new Error(message), { statusCode: status });
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
          ? { [K in keyof T as T[K] extends undefined | ((...args: never[]) => unknown) | symbol ? never : K]: Jsonified<T[K]> }
          : never;
