/**
 * The client's view of a server function's type, shared by the framework bindings (`./react`,
 * `./vue`) and the client types the plugin writes for plain functions.
 */
import type { Jsonified, RegisteredSchema, ServerContext } from './context.js';
import type { SERVER_FUNCTION } from './kinds.js';
import type { StorageOf } from './schema.js';

/**
 * Arguments the client passes. Handlers and declarative functions carry the client's signature
 * already; a plain function loses its leading `ctx` (its last signature is the client's when the
 * plugin's types are in the program: then its first parameter is no context and stays).
 */
export type ClientArgs<F> = F extends { readonly [SERVER_FUNCTION]: unknown }
  ? F extends (...args: infer A) => unknown
    ? A
    : never
  : F extends (ctx: infer C, ...args: infer A) => unknown
    ? IsContext<C> extends true
      ? A
      : F extends (...args: infer All) => unknown
        ? All
        : never
    : never;

/** What the client receives: the awaited result after a JSON round trip. */
export type ClientResult<F> = F extends (...args: never[]) => infer R ? Jsonified<Awaited<R>> : never;

/** A plain server function as the client calls it: `ctx` removed, result JSON-serialized and async. */
export type PlainClientArgs<F> = F extends (ctx: never, ...args: infer A) => unknown ? A : never;

/** The settings document of the registered schema (any record without one). */
export type RegisteredStorage = StorageOf<RegisteredSchema>;

/** `any`, or a type the host's context fits that names one of its fields (a `ctx` parameter). */
type IsContext<C> = 0 extends 1 & C
  ? true
  : [C] extends [never]
    ? false
    : [ServerContext] extends [C]
      ? [keyof C & keyof ServerContext] extends [never]
        ? false
        : true
      : false;
