import type { ServerContext } from '../../runtime/context.js';
import type { FunctionKind } from '../../runtime/kinds.js';

/** The incoming request, as far as an executor may see it (endpoint mode forwards auth headers). */
export interface CallRequest {
  header(name: string): string | undefined;
}

/**
 * Runs one resolved server function with its context and client arguments. `kind` (the function
 * kind, for rate limits) is set by the function table; unset means a plain function.
 */
export type Invocation = ((ctx: ServerContext, args: unknown[], request?: CallRequest) => unknown) & {
  readonly kind?: FunctionKind;
};

/**
 * How one kind of server function runs: plain functions in-process (`ModuleExecutor`), declarative
 * CRUD as compiled SQL (`DeclarativeExecutor`), handlers in isolates (`IsolateExecutor`), or every
 * function of a feature on its own backend (`EndpointExecutor`). The feature's function table hands
 * each export to the executor of its kind (runtime/kinds.ts); a new kind is a new executor.
 *
 * @example
 * const executor: Executor = new ModuleExecutor()
 * executor.invocation('getData', getData)?.(ctx, [42])
 */
export interface Executor {
  /** The kinds of function it runs. */
  readonly kinds: readonly FunctionKind[];
  /**
   * The invocation of export `name`, given the value its module exports (`undefined` for the
   * endpoint executor, whose functions live elsewhere); `undefined` when the value cannot be run
   * (e.g. a plain export that is not a function). Throws a `UsageError` when the export is wrong
   * in a way the user must fix (e.g. a `queryRows` of a table the schema lacks), so the mistake is
   * reported when the module loads rather than as a 500 on the first call.
   */
  invocation(name: string, value: unknown): Invocation | undefined;
  /** Frees what it holds (sockets, isolates). */
  close?(): void;
}

export { RawJson } from '../common/raw-json.js';
