/**
 * The wire protocol between the browser client and the host: route, body shape, header names and
 * the error texts of the contract. Both sides import this module, so they cannot drift apart.
 */

/** Prefix of the RPC route: `POST /rpc/{featureId}/{fnName}`. */
export const RPC_PREFIX = '/rpc';

/** Route of a feature's settings document: `GET|PUT /_storage/{featureId}`. */
export const STORAGE_PREFIX = '/_storage';

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

/** The start of each error text of the contract; the host may add detail after it. */
export const ErrorText = {
  malformed: 'Malformed RPC request',
  unauthorized: 'Unauthorized',
  notDeclared: (fn: string) => `Function "${fn}" is not declared in serverFunctions.exports`,
  notExported: (fn: string) => `Function "${fn}" is not exported by the server module`,
  featureNotFound: (featureId: string) => `Feature "${featureId}" not found`,
  payloadTooLarge: 'Payload too large',
  invalidArguments: 'Invalid arguments',
  rateLimited: 'Rate limit exceeded',
  internal: 'Internal error',
  upstream: 'RPC upstream error',
  unavailable: 'Server functions unavailable',
  timedOut: 'RPC execution timed out',
  upstreamTimedOut: 'RPC upstream timed out',
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
