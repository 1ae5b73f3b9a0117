import type { Context, MiddlewareHandler, Next } from 'hono';
import { RequestError } from '../../runtime/request-error.js';
import type { HostEnv } from '../host/host.js';

const CLOSE = Object.freeze({ connection: 'close' });

/** Counts requests in flight and, once the host shuts down, refuses new ones. */
export interface Drain {
  middleware: MiddlewareHandler<HostEnv>;
  /** From now on new requests get 503 `Server functions unavailable` and `connection: close`. */
  start(): void;
  /** Resolves when no request is in flight any more, or after `graceMs`. */
  settled(graceMs: number): Promise<void>;
}

/**
 * The graceful shutdown of `favn serve`: requests in flight finish, new ones are refused with a
 * 503 `RequestError`, which the host's error handler answers like every other failure (the
 * contract's `{error, requestId}` body and `x-request-id`). Register it on the host's app (its
 * `before` option), so the error reaches that handler.
 *
 * @example
 * const drain = createDrain()
 * app.use('*', drain.middleware)
 * drain.start(); await drain.settled(30_000)
 */
export function createDrain(): Drain {
  let inFlight = 0;
  let draining = false;
  let drained: (() => void) | null = null;
  return {
    async middleware(_c: Context<HostEnv>, next: Next) {
      // `connection: close`: a keep-alive client must not send its next request to a closing host.
      if (draining) throw RequestError.of('unavailable', 'the host is shutting down', undefined, { headers: CLOSE });
      inFlight++;
      try {
        await next();
      } finally {
        if (--inFlight === 0 && drained) drained();
      }
    },
    start() {
      draining = true;
    },
    async settled(graceMs) {
      if (inFlight === 0) return;
      const timeout = new Promise((r) => setTimeout(r, graceMs).unref());
      await Promise.race([new Promise<void>((resolve) => (drained = resolve)), timeout]);
    },
  };
}
