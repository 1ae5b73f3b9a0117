import type { ServerContext } from '../../runtime/server.js';
import type { FunctionKind } from '../rate-limit/limits.js';

/** The incoming request, as far as an executor may see it (endpoint mode forwards auth headers). */
export interface CallRequest {
  header(name: string): string | undefined;
}

/**
 * Runs one resolved server function with its context and client arguments. `kind` (the function
 * kind, for rate limits) is set by the module executor; unset means a plain function.
 */
export type Invocation = ((ctx: ServerContext, args: unknown[], request?: CallRequest) => unknown) & { readonly kind?: FunctionKind };

/** What `/_health` and `/_admin` show about an executor. */
export interface ExecutorStatus {
  /** Names the executor can run right now. */
  exports: string[];
  /** When the current code was loaded (ISO string), `null` before the first load. */
  loadedAt: string | null;
  /** Why some or all of the code is not loaded, `null` when everything loaded. */
  error: string | null;
}

/**
 * How a feature's functions run: in-process modules, declarative SQL, isolates, or an upstream
 * endpoint. The RPC route checks the declaration, then asks the executor to resolve the name.
 */
export interface Executor {
  readonly mode: 'module' | 'endpoint';
  status(): ExecutorStatus;
  /**
   * The invocation for `fnName`, or `undefined` when the code has no such own export. Throws an
   * `HTTPException` (503) when the code that should have it is not loaded. Returns a promise only
   * while a reload is under way.
   */
  resolve(fnName: string): Invocation | undefined | Promise<Invocation | undefined>;
}

/**
 * A result that is already JSON text (e.g. copied out of an isolate as a string): the RPC route
 * sends it as it is instead of parsing and serializing it again.
 */
export class RawJson {
  /** `status` other than 200: an upstream's error answer, passed through as it is. */
  constructor(
    readonly json: string,
    readonly status = 200,
  ) {}
}
