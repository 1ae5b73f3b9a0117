import type { QueryFn, TransactionOptions } from './sql-client.js';
import { TransactionTimeoutError } from './transaction-timeout-error.js';

/** PGlite runs one transaction at a time: every other database call waits while one is held. */
export const PGLITE_TRANSACTION_TIMEOUT_MS = 1000;
/**
 * PostgreSQL runs transactions side by side, but each holds a pooled connection and its row locks:
 * more room than PGlite, and still well inside a call's own time limit (10 s by default).
 */
export const POSTGRES_TRANSACTION_TIMEOUT_MS = 5000;

export { TransactionTimeoutError };

/**
 * The clock of one feature transaction. The engine calls `start` once it holds the database (so
 * waiting for PGlite's lock or a pooled connection does not count), runs the body through `run`,
 * and hands its outcome to `settle`. When the budget ends first, `run` rejects at once, so the
 * engine rolls back and frees the database while the body may still be running; the body's
 * `query` throws from then on, so nothing of it runs outside the transaction.
 *
 * @example
 * const budget = new TransactionBudget(1000, options)
 * return budget.settle(db.transaction(async (tx) => {
 *   budget.start()
 *   return budget.run(fn, query)
 * }))
 */
export class TransactionBudget {
  readonly timeoutMs: number;
  readonly #signal: AbortSignal | undefined;
  readonly #onExpire: TransactionOptions['onExpire'];
  #state: 'waiting' | 'open' | 'ended' = 'waiting';
  /** Why the transaction was cut short (budget or abort), if it was. */
  #error: Error | null = null;
  #started = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #interrupt: ((error: Error) => void) | null = null;
  #body: Promise<unknown> | null = null;
  readonly #onAbort = () => this.#stop(asError(this.#signal?.reason));

  constructor(timeoutMs: number, options: Pick<TransactionOptions, 'signal' | 'onExpire'> = {}) {
    this.timeoutMs = timeoutMs;
    this.#signal = options.signal;
    this.#onExpire = options.onExpire;
  }

  /** The transaction holds the database from now on. Throws when the signal already aborted. */
  start(): void {
    if (this.#signal?.aborted) throw asError(this.#signal.reason);
    this.#state = 'open';
    this.#started = performance.now();
    this.#timer = setTimeout(() => this.#expire(), this.timeoutMs);
    this.#timer.unref?.();
    this.#signal?.addEventListener('abort', this.#onAbort, { once: true });
  }

  /**
   * Runs the transaction body with a guarded `query`. Settles with the body, or rejects as soon
   * as the budget ends; a body that succeeds after its budget (a long statement that blocked the
   * timer) is refused as well, so the engine rolls it back instead of committing. A body that
   * fails late keeps its own error (an isolate's CPU limit, say): it rolls back all the same.
   */
  run<T>(fn: (query: QueryFn) => Promise<T>, query: QueryFn): Promise<T> {
    if (this.#state !== 'open') {
      return Promise.reject(this.#error ?? new Error('The transaction has not started: this is a bug'));
    }
    let body: Promise<T>;
    try {
      body = Promise.resolve(fn(this.#guard(query)));
    } catch (error) {
      body = Promise.reject(error);
    }
    this.#body = body;
    return new Promise<T>((resolve, reject) => {
      this.#interrupt = reject;
      body.then(
        (value) => this.#finished(true) && resolve(value),
        (error: unknown) => this.#finished(false, error) && reject(error),
      );
    });
  }

  /**
   * The outcome the caller sees, once the engine has committed or rolled back. When the budget
   * ended the transaction, that is the budget's error, given only after the body settled: a caller
   * (an isolate slot, a request) is then sure nothing of the transaction still runs.
   */
  async settle<T>(outcome: Promise<T>): Promise<T> {
    try {
      return await outcome;
    } catch (error) {
      if (!this.#error) throw error;
      await this.#body?.then(ignore, ignore);
      throw this.#error;
    } finally {
      this.#close();
    }
  }

  /** The body settled: true when its outcome stands, false when the budget ended the transaction. */
  #finished(succeeded: boolean, error?: unknown): boolean {
    if (this.#state !== 'open') return false;
    // PostgreSQL's statement_timeout (set to the budget) can answer before a busy event loop runs
    // the timer: that failure is the budget's too.
    if ((succeeded || isStatementTimeout(error)) && performance.now() - this.#started >= this.timeoutMs) {
      this.#expire();
      return false;
    }
    this.#close();
    return true;
  }

  #expire(): void {
    if (this.#state !== 'open') return;
    const error = new TransactionTimeoutError(this.timeoutMs);
    this.#stop(error);
    this.#onExpire?.(error);
  }

  #stop(error: Error): void {
    if (this.#state !== 'open') return;
    this.#error = error;
    this.#close();
    this.#interrupt?.(error);
  }

  #close(): void {
    this.#state = 'ended';
    clearTimeout(this.#timer);
    this.#signal?.removeEventListener('abort', this.#onAbort);
  }

  /**
   * The body's `query`. The check is synchronous and the engine queues the statement in the same
   * tick, so a statement let through always runs before the engine's ROLLBACK or COMMIT.
   */
  #guard(query: QueryFn): QueryFn {
    return (text, values) => {
      if (this.#state === 'open') return query(text, values);
      const ended = new Error('This transaction has already ended: run its statements before its function returns');
      return Promise.reject(this.#error ?? ended);
    };
  }
}

function asError(reason: unknown): Error {
  return reason instanceof Error ? reason : new Error(`The transaction was aborted: ${String(reason)}`);
}

function ignore(): void {}

/** PostgreSQL's "canceling statement due to statement timeout" (SQLSTATE 57014, query_canceled). */
function isStatementTimeout(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === '57014' && /statement timeout/.test((error as Error).message);
}
