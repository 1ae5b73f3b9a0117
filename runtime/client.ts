/**
 * Browser side of server functions. The plugin replaces each `*.server.*` module in client builds
 * with calls to `createServerFunction`; `RpcError` is what those calls throw.
 */
import { REQUEST_ID_HEADER, rpcPath, STORAGE_PREFIX, type RpcErrorBody } from './protocol.js';
import { RpcError } from './rpc-error.js';

export { RpcError } from './rpc-error.js';
export { rpcPath } from './protocol.js';

/** Settings shared by every proxy in the page. */
export interface RpcClientOptions {
  /** Origin or path prefix the `/rpc/...` route lives under. Default: same origin, no prefix. */
  baseUrl?: string;
  /** Extra headers for every call, e.g. an `authorization` header. */
  headers?: Record<string, string> | (() => Record<string, string>);
  /** The fetch to use. Default: the global one. */
  fetch?: typeof fetch;
  /** The page's feature, for `useExtensionStorage()`. Default: the feature of the first proxy. */
  featureId?: string;
}

/** A client-side server function: the server signature minus the `ctx` argument. */
export interface ServerFunctionProxy<Args extends unknown[] = unknown[], Result = unknown> {
  (...args: Args): Promise<Result>;
  readonly featureId: string;
  readonly fnName: string;
}

const settings: RpcClientOptions = {};

/**
 * Changes how every proxy in the page calls the host.
 *
 * @example
 * configureRpc({ headers: () => ({ authorization: `Bearer ${token()}` }) })
 */
export function configureRpc(options: RpcClientOptions): void {
  Object.assign(settings, options);
}

/**
 * Calls a server function over the RPC route and returns its JSON result.
 * Throws `RpcError` on any failure.
 *
 * @example
 * const stats = await callServerFunction('feature-my-feature', 'getData')
 */
export async function callServerFunction(featureId: string, fnName: string, ...args: unknown[]): Promise<unknown> {
  return request(rpcPath(featureId, fnName), 'POST', JSON.stringify({ args }), fnName);
}

/**
 * One call to the host: network failures are `RpcError` status 0, non-2xx answers `RpcError` with
 * the contract's error text, 2xx answers their parsed JSON.
 */
async function request(path: string, method: string, body: string | undefined, what: string): Promise<unknown> {
  const doFetch = settings.fetch ?? globalThis.fetch;
  const extra = typeof settings.headers === 'function' ? settings.headers() : settings.headers;
  let response: Response;
  try {
    response = await doFetch(`${settings.baseUrl ?? ''}${path}`, {
      method,
      headers: { 'content-type': 'application/json', ...extra },
      body,
    });
  } catch (cause) {
    throw new RpcError(0, `Network error calling ${what}: ${messageOf(cause)}`, null, { cause });
  }
  const requestId = response.headers.get(REQUEST_ID_HEADER);
  let text: string;
  try {
    text = await response.text();
  } catch (cause) {
    throw new RpcError(0, `Network error reading the result of ${what}: ${messageOf(cause)}`, requestId, { cause });
  }
  const parsed = parseJson(text);
  if (response.ok) {
    if (parsed.ok) return parsed.value;
    throw new RpcError(response.status, `${what} returned a response that is not JSON`, requestId);
  }
  const errorBody = parsed.ok ? (parsed.value as Partial<RpcErrorBody> | null) : null;
  const message = typeof errorBody?.error === 'string' ? errorBody.error : `RPC failed: ${response.status}`;
  throw new RpcError(response.status, message, errorBody?.requestId ?? requestId);
}

/**
 * Makes the client stand-in for one server function. The plugin emits these; you rarely call it.
 *
 * @example
 * export const getData = createServerFunction('feature-my-feature', 'getData')
 */
export function createServerFunction(featureId: string, fnName: string): ServerFunctionProxy {
  settings.featureId ??= featureId;
  const proxy = (...args: unknown[]) => callServerFunction(featureId, fnName, ...args);
  Object.defineProperties(proxy, {
    name: { value: fnName },
    featureId: { value: featureId, enumerable: true },
    fnName: { value: fnName, enumerable: true },
  });
  return proxy as ServerFunctionProxy;
}

function parseJson(text: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false };
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Reads (`doc` undefined) or replaces the feature's settings document. Throws `RpcError`.
 *
 * @example
 * await storageRequest({ theme: 'dark', pageSize: 20 })
 */
export async function storageRequest(doc?: unknown, featureId = settings.featureId): Promise<unknown> {
  if (!featureId)
    throw new RpcError(
      0,
      'useExtensionStorage: no featureId known; pass it, or call configureRpc({ featureId })',
      null,
    );
  const path = `${STORAGE_PREFIX}/${encodeURIComponent(featureId)}`;
  return doc === undefined
    ? request(path, 'GET', undefined, 'the settings document')
    : request(path, 'PUT', JSON.stringify(doc), 'the settings document');
}
