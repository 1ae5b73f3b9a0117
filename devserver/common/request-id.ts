import { randomUUID } from 'node:crypto';
import { REQUEST_ID_HEADER } from '../../runtime/protocol.js';

/** An incoming `x-request-id` is kept only when it is a short token that is safe to log and echo. */
const SAFE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/;

/** The part of a Hono context that carries the request id (the host's `HostEnv` has it). */
interface RequestIdContext {
  req: { header(name: string): string | undefined };
  set(key: 'requestId', value: string): void;
}

/**
 * A request's id: the caller's `x-request-id` if it is a short safe token, else a fresh UUID.
 *
 * @example
 * requestIdFrom('abc-123') // 'abc-123'
 * requestIdFrom('<script>') // a fresh UUID
 */
export function requestIdFrom(incoming: string | null | undefined): string {
  return incoming && SAFE_REQUEST_ID.test(incoming) ? incoming : randomUUID();
}

/**
 * Picks the request's id (see `requestIdFrom`) and stores it on the context, where the host's
 * error handler finds it for the `{error, requestId}` body and the `x-request-id` header.
 *
 * @example
 * app.use('*', (c, next) => { assignRequestId(c); return next() })
 */
export function assignRequestId(c: RequestIdContext): string {
  const requestId = requestIdFrom(c.req.header(REQUEST_ID_HEADER));
  c.set('requestId', requestId);
  return requestId;
}
