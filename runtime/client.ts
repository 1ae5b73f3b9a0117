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
  const doFetch = settings.fetch ?? globalThis.fetch;
  const extra = typeof settings.headers === 'function' ? settings.headers() : settings.headers;
  let response: Response;
  try {
    response = await doFetch(`${settings.baseUrl ?? ''}${rpcPath(featureId, fnName)}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...extra },
      body: JSON.stringify({ args }),
    });
  } catch (cause) {
    throw new RpcError(0, `Network error calling ${fnName}: ${messageOf(cause)}`, null, { cause });
  }
  const requestId = response.headers.get(REQUEST_ID_HEADER);
  let text: string;
  try {
    text = await response.text();
  } catch (cause) {
    throw new RpcError(0, `Network error reading the result of ${fnName}: ${messageOf(cause)}`, requestId, { cause });
  }
  const body = parseJson(text);
  if (response.ok) {
    if (body.ok) return body.value;
    throw new RpcError(response.status, `${fnName} returned a response that is not JSON`, requestId);
  }
  const errorBody = body.ok ? (body.value as Partial<RpcErrorBody> | null) : null;
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
  if (!featureId) throw new RpcError(0, 'useExtensionStorage: no featureId known; pass it, or call configureRpc({ featureId })', null);
  const doFetch = settings.fetch ?? globalThis.fetch;
  const extra = typeof settings.headers === 'function' ? settings.headers() : settings.headers;
  let response: Response;
  try {
    response = await doFetch(`${settings.baseUrl ?? ''}${STORAGE_PREFIX}/${encodeURIComponent(featureId)}`, {
      method: doc === undefined ? 'GET' : 'PUT',
      headers: { 'content-type': 'application/json', ...extra },
      body: doc === undefined ? undefined : JSON.stringify(doc),
    });
  } catch (cause) {
    throw new RpcError(0, `Network error reaching the settings document: ${messageOf(cause)}`, null, { cause });
  }
  const body = parseJson(await response.text());
  if (response.ok && body.ok) return body.value;
  const error = body.ok ? (body.value as Partial<RpcErrorBody> | null)?.error : undefined;
  throw new RpcError(response.status, typeof error === 'string' ? error : `Settings request failed: ${response.status}`, response.headers.get(REQUEST_ID_HEADER));
}
