/**
 * Handler functions: `query`, `mutation` and `action` run in a V8 isolate with memory and CPU
 * limits, never in the host process. Nothing of Node is there: no `process`, no `require`.
 *
 * @example
 * // src/rules.server.ts
 * export const topRules = query({
 *   args: [v.int()],
 *   handler: async (ctx, min) => (await ctx.db.query('rules', { where: { votes: { gte: min } } })).rows,
 * })
 */
import type { CallContext, DbReader, DbWriter, Jsonified } from './context.js';
import { isHandlerKind, SERVER_FUNCTION, type HandlerKind } from './kinds.js';
import { formatIssues } from './validators.js';

export type { HandlerKind };

/** `ctx.db` of a query: reads only. */
export type ReadOnlyDb = DbReader;

export interface QueryCtx extends CallContext {
  db: ReadOnlyDb;
}

/** A mutation's `ctx.db`: every write of one call commits together, or none if it throws. */
export interface MutationCtx extends CallContext {
  db: DbWriter;
}

/** What `ctx.fetch` resolves to: the status, headers and the whole body as text. */
export interface FetchResponse {
  ok: boolean;
  status: number;
  statusText: string;
  url: string;
  headers: { get(name: string): string | null; entries(): [string, string][] };
  text(): Promise<string>;
  json(): Promise<unknown>;
}

export interface FetchInit {
  method?: string;
  headers?: Record<string, string> | [string, string][];
  body?: string;
}

export interface ActionCtx extends CallContext {
  /** Outbound HTTP with a timeout, a response size cap and (if configured) a host allowlist. */
  fetch(url: string, init?: FetchInit): Promise<FetchResponse>;
  secrets: Readonly<Record<string, string>>;
  runQuery<R>(fn: HandlerFunction<'query', never[], R> | string, ...args: unknown[]): Promise<Awaited<R>>;
  runMutation<R>(fn: HandlerFunction<'mutation', never[], R> | string, ...args: unknown[]): Promise<Awaited<R>>;
}

type CtxOf<K extends HandlerKind> = K extends 'query' ? QueryCtx : K extends 'mutation' ? MutationCtx : ActionCtx;

/** Any Standard Schema v1 object (the project's `v.*`, zod, valibot, arktype): sync or async. */
export interface AnyStandardSchema {
  readonly '~standard': {
    readonly version: 1;
    readonly vendor: string;
    readonly validate: (value: unknown) => unknown;
    readonly types?: { readonly input: unknown; readonly output: unknown } | undefined;
  };
}

/** One validator per positional argument. */
type ArgValidators = readonly AnyStandardSchema[];
type OutputOf<S> = S extends { '~standard': { types?: { output: infer O } | undefined } } ? O : unknown;
type InputOf<S> = S extends { '~standard': { types?: { input: infer I } | undefined } } ? I : unknown;
type StandardResult =
  { value: unknown; issues?: undefined } | { issues: readonly { message: string; path?: readonly unknown[] }[] };
/** What the handler receives: each validator's output. */
type ArgsOf<V extends ArgValidators> = { -readonly [I in keyof V]: OutputOf<V[I]> };
/** What the client passes: each validator's input; trailing ones that accept `undefined` may be left out. */
type ClientArgsOf<V extends ArgValidators> = OptionalTail<{ -readonly [I in keyof V]: InputOf<V[I]> }>;
type OptionalTail<A extends unknown[]> = A extends [...infer Head, infer Last]
  ? undefined extends Last
    ? [...OptionalTail<Head>, Last?]
    : A
  : A;

export interface HandlerDefinition<K extends HandlerKind, A extends unknown[], R> {
  /** Validators for the client's arguments, checked before the handler runs (422 on failure). */
  args?: ArgValidators;
  handler: (ctx: CtxOf<K>, ...args: A) => R;
}

/**
 * What `query()`, `mutation()` and `action()` return: a definition the host runs in an isolate.
 * Its call signature is the client's: a component imports it and calls it with the arguments
 * after `ctx`. Called on the server it throws; an action runs it with `ctx.runQuery`/`runMutation`.
 */
export interface HandlerFunction<K extends HandlerKind = HandlerKind, A extends unknown[] = unknown[], R = unknown> {
  (...args: A): Promise<Jsonified<Awaited<R>>>;
  readonly [SERVER_FUNCTION]: K;
  readonly args: ArgValidators | undefined;
  readonly handler: (ctx: CtxOf<K>, ...args: never[]) => R;
}

function define<K extends HandlerKind>(
  kind: K,
  definition: { args?: ArgValidators; handler: unknown },
): HandlerFunction<K, never[], unknown> {
  if (!definition || typeof definition.handler !== 'function')
    throw new TypeError(`${kind}({ handler }) needs a handler function`);
  if (definition.args !== undefined && !Array.isArray(definition.args)) {
    throw new TypeError(`${kind}({ args }) must be an array with one validator per argument, e.g. args: [v.string()]`);
  }
  const runner =
    kind === 'action'
      ? 'the client'
      : `the client, or from an action with ctx.run${kind === 'query' ? 'Query' : 'Mutation'}`;
  const fn = () => {
    throw new Error(`A ${kind} runs in an isolate and is not called directly on the server: call it from ${runner}`);
  };
  return Object.freeze(
    Object.assign(fn, { [SERVER_FUNCTION]: kind, args: definition.args, handler: definition.handler }),
  ) as unknown as HandlerFunction<K, never[], unknown>;
}

/** A read-only, deterministic handler: `ctx.db` reads, `Date` is frozen, `Math.random` seeded, no fetch. */
export function query<const V extends ArgValidators, R>(definition: {
  args: V;
  handler: (ctx: QueryCtx, ...args: ArgsOf<V>) => R;
}): HandlerFunction<'query', ClientArgsOf<V>, R>;
export function query<A extends unknown[], R>(definition: {
  handler: (ctx: QueryCtx, ...args: A) => R;
}): HandlerFunction<'query', A, R>;
export function query(definition: {
  args?: ArgValidators;
  handler: unknown;
}): HandlerFunction<'query', never[], unknown> {
  return define('query', definition);
}

/** A deterministic handler whose `ctx.db` writes commit in one transaction, rolled back if it throws. */
export function mutation<const V extends ArgValidators, R>(definition: {
  args: V;
  handler: (ctx: MutationCtx, ...args: ArgsOf<V>) => R;
}): HandlerFunction<'mutation', ClientArgsOf<V>, R>;
export function mutation<A extends unknown[], R>(definition: {
  handler: (ctx: MutationCtx, ...args: A) => R;
}): HandlerFunction<'mutation', A, R>;
export function mutation(definition: {
  args?: ArgValidators;
  handler: unknown;
}): HandlerFunction<'mutation', never[], unknown> {
  return define('mutation', definition);
}

/** A handler for the outside world: `ctx.fetch`, `ctx.secrets`, `ctx.runQuery`/`runMutation`, no `ctx.db`. */
export function action<const V extends ArgValidators, R>(definition: {
  args: V;
  handler: (ctx: ActionCtx, ...args: ArgsOf<V>) => R;
}): HandlerFunction<'action', ClientArgsOf<V>, R>;
export function action<A extends unknown[], R>(definition: {
  handler: (ctx: ActionCtx, ...args: A) => R;
}): HandlerFunction<'action', A, R>;
export function action(definition: {
  args?: ArgValidators;
  handler: unknown;
}): HandlerFunction<'action', never[], unknown> {
  return define('action', definition);
}

/** True for what `query()`, `mutation()` or `action()` returned. */
export function isHandler(value: unknown): value is HandlerFunction {
  return typeof value === 'function' && isHandlerKind((value as unknown as Record<symbol, unknown>)[SERVER_FUNCTION]);
}

/**
 * Checks the client's arguments against the handler's validators, then runs it. Validation
 * failures throw a 422 error whose message names the path (`args[0].title: expected string`).
 * Runs inside the isolate. Stays synchronous while the validators and the handler are, so a
 * synchronous handler's result is there without waiting for a microtask.
 */
export function runHandler(fn: HandlerFunction, ctx: unknown, args: unknown[]): unknown {
  const validators = fn.args;
  if (!validators) return (fn.handler as (ctx: unknown, ...args: unknown[]) => unknown)(ctx, ...args);
  if (args.length > validators.length) {
    throw invalid(
      `expected at most ${validators.length} argument${validators.length === 1 ? '' : 's'}, got ${args.length}`,
    );
  }
  const results = validators.map((validator, i) => validator['~standard'].validate(args[i]));
  if (results.some(isThenable))
    return Promise.all(results).then((settled) => call(fn, ctx, settled as StandardResult[]));
  return call(fn, ctx, results as StandardResult[]);
}

function call(fn: HandlerFunction, ctx: unknown, results: StandardResult[]): unknown {
  const issues: { message: string; path?: readonly unknown[] }[] = [];
  const checked: unknown[] = [];
  results.forEach((result, i) => {
    if (result.issues)
      for (const issue of result.issues)
        issues.push({ message: issue.message, path: ['args', i, ...(issue.path ?? [])] });
    else checked.push(result.value);
  });
  if (issues.length) throw invalid(formatIssues(issues));
  return (fn.handler as (ctx: unknown, ...args: unknown[]) => unknown)(ctx, ...checked);
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function';
}

function invalid(detail: string): Error & { statusCode: number } {
  return Object.assign(new Error(`Invalid arguments: ${detail}`), { statusCode: 422 });
}
