/**
 * The wire protocol between the browser client and the host: route, body shape, header names and
 * the error texts of the contract. Both sides import this module, so they cannot drift apart.
 */

/** Prefix of the RPC route: `POST /rpc/{featureId}/{fnName}`. */
export const RPC_PREFIX = '/rpc';

/** Route of a feature's settings document: `GET|PUT /_storage/{featureId}`. */
export const STORAGE_PREFIX = '/_storage';

/**
 * Live queries: `GET /_live/{featureId}` opens the page's push stream (server-sent events);
 * `POST /_live/{featureId}/unsubscribe` ends subscriptions.
 */
export const LIVE_PREFIX = '/_live';

/**
 * On a call: `{connectionId}.{subId}` keeps its query live on that stream. On the answer: `on`, or
 * `off; <why>` when the query answers once (it wrote, it reads no table, a limit was reached).
 */
export const LIVE_HEADER = 'x-favn-live';

/** Response (and accepted request) header carrying the call's request id. */
export const REQUEST_ID_HEADER = 'x-request-id';

/** Default largest request body the host accepts, checked before parsing. */
export const DEFAULT_BODY_LIMIT = 1024 * 1024;

/** Default time a server function may run before the call fails with 503. */
export const DEFAULT_TIMEOUT_MS = 10_000;

/** A featureId: lower-case letters, digits and `-`, 1 to 63 characters. */
export const FEATURE_ID_PATTERN = /^[a-z0-9-]{1,63}$/;

/** Body of every failed call. */
export interface RpcErrorBody {
  error: string;
  requestId: string;
}

/** Body of every call. */
export interface RpcRequestBody {
  args: unknown[];
}

/**
 * Each failure row of the contract: its status and the start of its text (the host may add detail
 * after it). `{name}` stands for the function or feature the row is about. Host and client read
 * both from here; `RequestError.of` builds the error of a row.
 */
export const CONTRACT_ERRORS = {
  malformed: { status: 400, text: 'Malformed RPC request' },
  unauthorized: { status: 401, text: 'Unauthorized' },
  notDeclared: { status: 403, text: 'Function "{name}" is not declared in serverFunctions.exports' },
  notExported: { status: 403, text: 'Function "{name}" is not exported by the server module' },
  featureNotFound: { status: 404, text: 'Feature "{name}" not found' },
  payloadTooLarge: { status: 413, text: 'Payload too large' },
  invalidArguments: { status: 422, text: 'Invalid arguments' },
  rateLimited: { status: 429, text: 'Rate limit exceeded' },
  internal: { status: 500, text: 'Internal error' },
  upstream: { status: 502, text: 'RPC upstream error' },
  unavailable: { status: 503, text: 'Server functions unavailable' },
  timedOut: { status: 503, text: 'RPC execution timed out' },
  upstreamTimedOut: { status: 503, text: 'RPC upstream timed out' },
} as const satisfies Record<string, { status: number; text: string }>;

/** The name of a contract row, e.g. `'unavailable'`. */
export type ContractErrorName = keyof typeof CONTRACT_ERRORS;

/**
 * The text of a contract row, with `{name}` filled in.
 *
 * @example
 * contractText('notDeclared', 'getData') // 'Function "getData" is not declared in serverFunctions.exports'
 */
export function contractText(row: ContractErrorName, name = ''): string {
  return CONTRACT_ERRORS[row].text.replace('{name}', name);
}

/** The start of each error text of the contract, by row (see `CONTRACT_ERRORS`). */
export const ErrorText = {
  malformed: CONTRACT_ERRORS.malformed.text,
  unauthorized: CONTRACT_ERRORS.unauthorized.text,
  notDeclared: (fn: string) => contractText('notDeclared', fn),
  notExported: (fn: string) => contractText('notExported', fn),
  featureNotFound: (featureId: string) => contractText('featureNotFound', featureId),
  payloadTooLarge: CONTRACT_ERRORS.payloadTooLarge.text,
  invalidArguments: CONTRACT_ERRORS.invalidArguments.text,
  rateLimited: CONTRACT_ERRORS.rateLimited.text,
  internal: CONTRACT_ERRORS.internal.text,
  upstream: CONTRACT_ERRORS.upstream.text,
  unavailable: CONTRACT_ERRORS.unavailable.text,
  timedOut: CONTRACT_ERRORS.timedOut.text,
  upstreamTimedOut: CONTRACT_ERRORS.upstreamTimedOut.text,
} as const;

/**
 * The path of one server function's RPC route.
 *
 * @example
 * rpcPath('feature-reports', 'getData') // '/rpc/feature-reports/getData'
 */
export function rpcPath(featureId: string, fnName: string): string {
  return `${RPC_PREFIX}/${encodeURIComponent(featureId)}/${encodeURIComponent(fnName)}`;
}
