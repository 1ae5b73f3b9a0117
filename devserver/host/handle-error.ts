import { HTTPException } from 'hono/http-exception';
import { CONTRACT_ERRORS, ErrorText, REQUEST_ID_HEADER, type RpcErrorBody } from '../../runtime/protocol.js';
import { RequestError } from '../../runtime/request-error.js';
import { requestIdFrom } from '../common/request-id.js';
import type { CallLog } from './call-log.js';
import { isErrorStatus } from '../common/http-status.js';

/**
 * The part of the host's Hono context the handler uses (`Context<HostEnv>` has it): the request id
 * and the call the route started, if any.
 */
export interface ErrorContext {
  req: { header(name: string): string | undefined };
  get(key: 'requestId'): string | undefined;
  get(key: 'call'): { featureId: string; fnName: string; started: number } | undefined;
  json(body: RpcErrorBody, status: 500, headers: Record<string, string>): Response;
}

/** What the error handler needs of the host: dev mode, where stack traces go, the call log. */
export interface ErrorHandlerState {
  calls: CallLog;
  options: {
    dev: boolean;
    logError: (message: string, error: unknown) => void;
  };
}

/** Largest error message sent to a client, in UTF-8 bytes (SPEC §4); longer ones are cut and say so. */
export const MAX_ERROR_MESSAGE_BYTES = 4096;

/**
 * Turns any error into the contract's `{error, requestId}` JSON, in one place: the host's
 * `app.onError`, so routes and `before` middleware alike only throw.
 *
 * - `RequestError` (and Hono's own `HTTPException`): its status, its message, its headers.
 * - An error with a registered `statusCode`/`status` in 400..599 (what server functions throw):
 *   that status.
 * - Anything else: 500, with a stack trace in the terminal.
 *
 * 4xx messages always reach the client; 5xx ones in dev, or when they are the contract's own
 * (see `toFailure`); otherwise the client reads `Internal error`. Messages are cut at 4 KiB.
 *
 * The request id is the one the route picked, else the caller's `x-request-id` when it is a safe
 * token, else a fresh UUID; the body and the `x-request-id` header always carry the same one.
 *
 * @example
 * app.onError((error, c) => handleError(error, c, state))
 */
export function handleError(error: unknown, c: ErrorContext, state: ErrorHandlerState): Response {
  const requestId = c.get('requestId') ?? requestIdFrom(c.req.header(REQUEST_ID_HEADER));
  const { status, message, headers, expected } = toFailure(error, state.options.dev);
  const call = c.get('call');
  if (status >= 500 && !expected) {
    const where = call ? `${call.featureId}/${call.fnName}` : '';
    state.options.logError(`Server function ${where} failed (request ${requestId})`, error);
  }
  if (call) {
    const ms = performance.now() - call.started;
    state.calls.record({ featureId: call.featureId, fnName: call.fnName, status, ms, requestId });
  }
  const body: RpcErrorBody = { error: capMessage(message), requestId };
  return c.json(body, status as 500, { ...headers, [REQUEST_ID_HEADER]: requestId });
}

/** The answer to one thrown value. */
export interface Failure {
  status: number;
  message: string;
  headers: Record<string, string>;
  /** A request error the host meant to answer with (no stack trace in the terminal). */
  expected: boolean;
}

/**
 * The status, message and extra headers the client gets for a thrown value. A 5xx message reaches
 * the client outside dev only when it is one of the contract's own 5xx texts (`Server functions
 * unavailable`, `RPC execution timed out`, `RPC upstream error`, ...): a server function's
 * `httpError(500, ...)` or a bug keeps its text in the terminal.
 *
 * @example
 * toFailure(RequestError.of('unavailable'), false) // { status: 503, message: 'Server functions unavailable', ... }
 * toFailure(new Error('secret'), false)            // { status: 500, message: 'Internal error', ... }
 */
export function toFailure(error: unknown, dev: boolean): Failure {
  const request = requestErrorParts(error);
  const status = request?.status ?? statusOf(error);
  const message = error instanceof Error ? error.message : String(error);
  // A contract 5xx text is shown only when the host's own class made the error: a function in a
  // feature bundle (which carries its own copy of the class) cannot borrow one to show a 5xx
  // message or skip the log. In-process code that gets hold of the host's class is trusted code.
  const expected = request !== null && (status < 500 || (request.host && isContractText(message, status)));
  const shown = status < 500 || dev || expected;
  return {
    status,
    message: shown ? message || `Request failed with status ${status}` : ErrorText.internal,
    headers: request?.headers ?? {},
    expected,
  };
}

/**
 * `statusCode` or `status` of a thrown value when it is a registered HTTP error status (400..599),
 * else 500: a function cannot make the host answer with a status no client knows.
 *
 * @example
 * statusOf(Object.assign(new Error('no'), { statusCode: 403 })) // 403
 * statusOf({ status: 599 })                                      // 500
 */
export function statusOf(error: unknown): number {
  if (typeof error === 'object' && error !== null) {
    const { statusCode, status } = error as { statusCode?: unknown; status?: unknown };
    for (const s of [statusCode, status]) if (isErrorStatus(s)) return s;
  }
  return 500;
}

/**
 * The message as sent: at most MAX_ERROR_MESSAGE_BYTES, marked where it was cut.
 *
 * @example
 * capMessage('x'.repeat(5000)) // 4096 bytes: 'xxx…x … (cut: the message had 5000 bytes)'
 */
export function capMessage(message: string): string {
  if (message.length <= MAX_ERROR_MESSAGE_BYTES / 3) return message;
  const bytes = Buffer.from(message);
  if (bytes.length <= MAX_ERROR_MESSAGE_BYTES) return message;
  const marker = ` … (cut: the message had ${bytes.length} bytes)`;
  // A cut inside a multi-byte character decodes to U+FFFD: drop it.
  const kept = bytes.subarray(0, MAX_ERROR_MESSAGE_BYTES - Buffer.byteLength(marker)).toString('utf8');
  return kept.replace(/\uFFFD+$/, '') + marker;
}

/**
 * Status and headers of a `RequestError` (or Hono's exception) of an error status, else null. Each
 * is read once: a function's error may answer a getter differently on a second read.
 */
function requestErrorParts(error: unknown): { status: number; headers: Record<string, string>; host: boolean } | null {
  if (RequestError.is(error)) {
    let status: unknown;
    let headers: unknown;
    try {
      ({ status, headers } = error);
    } catch {
      return null;
    }
    if (!isErrorStatus(status)) return null;
    return { status, headers: responseHeaders(headers), host: error instanceof RequestError };
  }
  if (error instanceof HTTPException && isErrorStatus(error.status)) {
    const headers: Record<string, string> = {};
    error.res?.headers.forEach((value, key) => (headers[key] = value));
    return { status: error.status, headers: responseHeaders(headers), host: true };
  }
  return null;
}

// `Internal error` is what a hidden message becomes, never a text to show on its own merit.
const CONTRACT_ROWS = Object.values(CONTRACT_ERRORS).filter((row) => row !== CONTRACT_ERRORS.internal);

/** True when `message` starts with the text of a contract row of this status. */
function isContractText(message: string, status: number): boolean {
  return CONTRACT_ROWS.some((row) => row.status === status && message.startsWith(row.text));
}

/** Headers of an error that describe its own body, not ours: the JSON body and request id win. */
const OWN_HEADERS = new Set(['content-type', 'content-length', REQUEST_ID_HEADER]);

function responseHeaders(headers: unknown): Record<string, string> {
  const kept: Record<string, string> = {};
  if (typeof headers !== 'object' || headers === null) return kept;
  for (const [name, value] of Object.entries(headers)) {
    // Only what HTTP can carry: a bad name or value would fail the whole answer when it is written.
    if (typeof value !== 'string' || !HEADER_NAME.test(name) || !HEADER_VALUE.test(value)) continue;
    if (!OWN_HEADERS.has(name.toLowerCase())) kept[name] = value;
  }
  return kept;
}

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
