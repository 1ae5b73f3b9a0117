import type { Context, MiddlewareHandler, Next } from 'hono';
import { ErrorText, REQUEST_ID_HEADER, type RpcErrorBody } from '../../runtime/protocol.js';
import type { HostEnv } from '../host/host.js';
import { assignRequestId } from '../common/request-id.js';

/** Counts requests in flight and, once the host shuts down, refuses new ones. */
export interface Drain {
  middleware: MiddlewareHandler<HostEnv>;
  /** From now on new requests get 503 `Server functions unavailable` and `connection: close`. */
  start(): void;
  /** Resolves when no request is in flight any more, or after `graceMs`. */
  settled(graceMs: number): Promise<void>;
}

/**
 * The graceful shutdown of `favn serve`: requests in flight finish, new ones are refused with the
 * contract's `{error, requestId}` body and `x-request-id`, like every other failure.
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
    async middleware(c: Context<HostEnv>, next: Next) {
      if (draining) {
        const requestId = assignRequestId(c);
        const body: RpcErrorBody = { error: `${ErrorText.unavailable}: the host is shutting down`, requestId };
        return c.json(body, 503, { connection: 'close', [REQUEST_ID_HEADER]: requestId });
      }
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
