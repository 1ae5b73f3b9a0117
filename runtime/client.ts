/**
 * Browser side of server functions. The plugin replaces each `*.server.*` module in client builds
 * with calls to `createServerFunction`; `RpcError` is what those calls throw.
 */
import { LIVE_HEADER, LIVE_PREFIX, REQUEST_ID_HEADER, rpcPath, STORAGE_PREFIX, type RpcErrorBody } from './protocol.js';
import { connectToHost, type RelayCall } from './relay.js';
import { RpcError } from './rpc-error.js';
import { LiveChannel, openLiveSocket, socketUrl, type LiveStatus } from './live-client.js';
import type { ClientArgs, ClientResult } from './client-types.js';

export type { LiveStatus } from './live-client.js';
export type { ClientArgs, ClientResult } from './client-types.js';

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
  /** The page's feature, for `useExtensionStorage()`. Default: the feature of the first proxy loaded. */
  featureId?: string;
  /**
   * Live queries (default true): `useQuery` and `subscribe` get each new result the host pushes.
   * `false`: they answer once, and `useMutation` refetches the page's queries after a write.
   */
  live?: boolean;
}

/** A client-side server function: the server signature minus the `ctx` argument. */
export interface ServerFunctionProxy<Args extends unknown[] = unknown[], Result = unknown> {
  (...args: Args): Promise<Result>;
  readonly featureId: string;
  readonly fnName: string;
}

const settings: RpcClientOptions = {};

/**
 * The embedding host, when this page runs in a sandboxed frame; decided once, when the page loads,
 * so a page on its own calls over `fetch` with nothing in between.
 */
const frame = connectToHost();

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
  const call: RelayCall = { kind: 'rpc', featureId, fn: fnName, method: 'POST', body: JSON.stringify({ args }) };
  return request(call, fnName);
}

/**
 * One call to the host: network failures are `RpcError` status 0, non-2xx answers `RpcError` with
 * the contract's error text, 2xx answers their parsed JSON. In a frame the embedding host relays it.
 */
function request(call: RelayCall, what: string): Promise<unknown> {
  return frame ? relayRequest(frame, call, what) : fetchRequest(call, what);
}

/** `request` through the embedding host. */
async function relayRequest(host: NonNullable<typeof frame>, call: RelayCall, what: string): Promise<unknown> {
  return (await relayAnswer(host, call, what)).data;
}

function pathOf(call: RelayCall): string {
  if (call.kind === 'live') return `${LIVE_PREFIX}/${encodeURIComponent(call.featureId)}/unsubscribe`;
  return call.kind === 'rpc' ? rpcPath(call.featureId, call.fn!) : storagePath(call.featureId);
}

/** `request` over `fetch`, on the page's own origin (or `baseUrl`). */
async function fetchRequest(call: RelayCall, what: string): Promise<unknown> {
  return (await fetchAnswer(call, what)).data;
}

/** The page's headers for the host: `configureRpc({ headers })`. */
function pageHeaders(): Record<string, string> | undefined {
  return typeof settings.headers === 'function' ? settings.headers() : settings.headers;
}

/** A call over `fetch`: its result, and the `x-favn-live` answer when `live` asked to keep it live. */
async function fetchAnswer(
  call: RelayCall,
  what: string,
  live?: string,
): Promise<{ data: unknown; live: string | null }> {
  const { method, body } = call;
  const path = pathOf(call);
  const doFetch = settings.fetch ?? globalThis.fetch;
  const headers: Record<string, string> = { 'content-type': 'application/json', ...pageHeaders() };
  if (live) headers[LIVE_HEADER] = live;
  let response: Response;
  try {
    response = await doFetch(`${settings.baseUrl ?? ''}${path}`, { method, headers, body });
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
  return {
    data: readAnswer(response.ok, response.status, requestId, text, what),
    live: response.headers.get(LIVE_HEADER),
  };
}

/** The result of an answer, or the `RpcError` it stands for: the same for `fetch` and the relay. */
function readAnswer(ok: boolean, status: number, requestId: string | null, text: string, what: string): unknown {
  const parsed = parseJson(text);
  if (ok) {
    if (parsed.ok) return parsed.value;
    throw new RpcError(status, `${what} returned a response that is not JSON`, requestId);
  }
  const errorBody = parsed.ok ? (parsed.value as Partial<RpcErrorBody> | null) : null;
  const message = typeof errorBody?.error === 'string' ? errorBody.error : `RPC failed: ${status}`;
  throw new RpcError(status, message, errorBody?.requestId ?? requestId);
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

type AnyProxy = (...args: never[]) => unknown;

/** Options of `subscribe`. */
export interface SubscribeOptions {
  /** Hears where the subscription stands: `live`, `connecting`, `reconnecting` (connection lost), `off`. */
  onStatus?: (status: LiveStatus) => void;
}

const NOT_LIVE = Symbol.for('favn.notLive');
const onceFunctions = new WeakMap<AnyProxy, AnyProxy>();
const channels = new Map<string, LiveChannel>();

/**
 * Runs a query and keeps it live: `onData` gets its result now and again after each committed
 * write that changes it (pushed by the host, in every tab and for every user). Returns the
 * unsubscribe function. For Vue, Svelte and code without a framework; React's `useQuery` uses it.
 * Functions that write, run on the feature's own backend, or come through `notLive(fn)` answer once.
 *
 * @example
 * const stop = subscribe(listNotes, [{ limit: 20 }], (notes) => render(notes), (error) => show(error))
 */
export function subscribe<F extends AnyProxy>(
  fn: F,
  args: ClientArgs<F>,
  onData: (data: ClientResult<F>) => void,
  onError: (error: RpcError) => void = () => {},
  options: SubscribeOptions = {},
): () => void {
  const proxy = fn as unknown as ServerFunctionProxy & { [NOT_LIVE]?: true };
  const onStatus = options.onStatus ?? (() => {});
  const call: RelayCall = {
    kind: 'rpc',
    featureId: proxy.featureId,
    fn: proxy.fnName,
    method: 'POST',
    body: JSON.stringify({ args }),
  };
  return keepLive(call, proxy.fnName, Boolean(proxy[NOT_LIVE]), {
    onData: onData as (data: unknown) => void,
    onError,
    onStatus,
  });
}

/**
 * `fn` for `useQuery`/`subscribe` without live updates: it answers once (and refetches after a
 * `useMutation` of the page).
 *
 * @example
 * const { data } = useQuery(notLive(listNotes), { limit: 20 })
 */
export function notLive<F extends AnyProxy>(fn: F): F {
  // The same function each time: `useQuery(notLive(fn))` in a component's body does not restart.
  const known = onceFunctions.get(fn);
  if (known) return known as F;
  const proxy = fn as unknown as ServerFunctionProxy;
  const once = ((...args: unknown[]) => callServerFunction(proxy.featureId, proxy.fnName, ...args)) as unknown as F;
  onceFunctions.set(fn, once);
  Object.defineProperties(once, {
    name: { value: proxy.fnName },
    featureId: { value: proxy.featureId, enumerable: true },
    fnName: { value: proxy.fnName, enumerable: true },
    [NOT_LIVE]: { value: true },
  });
  return once;
}

/** Whether a query of `fn` is live: not with `notLive(fn)` nor `configureRpc({ live: false })`. */
export function isLive(fn: AnyProxy): boolean {
  return settings.live !== false && !(fn as { [NOT_LIVE]?: true })[NOT_LIVE];
}

/** An answer that `keepLive`'s `started` found out of date: no listener sees it. */
const OUT_OF_DATE = Symbol('out of date');

/**
 * Keeps one call live on the feature's channel. `started`, when given, runs as each call of the
 * subscription starts; the check it returns says, at the answer, whether the answer still holds
 * (one that does not is dropped, a push later brings the newer data).
 */
function keepLive(
  call: RelayCall,
  what: string,
  once: boolean,
  listener: { onData: (data: unknown) => void; onError: (error: RpcError) => void; onStatus: (s: LiveStatus) => void },
  started?: () => () => boolean,
): () => void {
  if (once || settings.live === false) {
    // Answers once: live updates were turned off.
    let stopped = false;
    request(call, what).then(
      (data) => !stopped && (listener.onData(data), listener.onStatus('off')),
      (error: RpcError) => !stopped && listener.onError(error),
    );
    return () => void (stopped = true);
  }
  const key = `${settings.baseUrl ?? ''}\0${call.featureId}`;
  let channel = channels.get(key);
  if (!channel) channels.set(key, (channel = createChannel(call.featureId)));
  const answer = (live?: string) => (frame ? relayAnswer(frame, call, what, live) : fetchAnswer(call, what, live));
  if (!started) return channel.add(answer, listener);
  return channel.add(
    async (live) => {
      const holds = started();
      try {
        const result = await answer(live);
        return holds() ? result : { ...result, data: OUT_OF_DATE };
      } catch (error) {
        if (holds()) throw error;
        return { data: OUT_OF_DATE, live: null };
      }
    },
    { ...listener, onData: (data) => data !== OUT_OF_DATE && listener.onData(data) },
  );
}

/** A call through the embedding host: its result, and the `x-favn-live` answer when `live` asked. */
async function relayAnswer(
  host: NonNullable<typeof frame>,
  call: RelayCall,
  what: string,
  live?: string,
): Promise<{ data: unknown; live: string | null }> {
  const answer = await host.send(live ? { ...call, live } : call);
  if (answer.status === 0) throw new RpcError(0, `Network error calling ${what}: ${answer.body}`, null);
  const data = readAnswer(
    answer.status >= 200 && answer.status < 300,
    answer.status,
    answer.requestId,
    answer.body,
    what,
  );
  return { data, live: answer.live ?? null };
}

function createChannel(featureId: string): LiveChannel {
  const base = () => `${settings.baseUrl ?? ''}${LIVE_PREFIX}/${encodeURIComponent(featureId)}`;
  const doFetch = () => settings.fetch ?? globalThis.fetch;
  if (frame) {
    // In a sandboxed frame the embedding host opens the stream, with its own credentials.
    const host = frame;
    return new LiveChannel({
      open: (signal) => host.open(featureId, signal),
      unsubscribe: (connection, subs) =>
        void host.send({ kind: 'live', featureId, method: 'POST', body: JSON.stringify({ connection, subs }) }),
    });
  }
  return new LiveChannel({
    async open(signal) {
      // A WebSocket where there is one (it takes none of the browser's six connections per
      // origin); server-sent events over fetch (a fetch of your own, if set) when it cannot open.
      const url = socketUrl(base());
      if (url) {
        try {
          return await openLiveSocket(url, pageHeaders() ?? {}, signal);
        } catch (error) {
          if (signal.aborted) throw error;
        }
      }
      return doFetch()(base(), { headers: { accept: 'text/event-stream', ...pageHeaders() }, signal });
    },
    unsubscribe: (connection, subs) =>
      void doFetch()(`${base()}/unsubscribe`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...pageHeaders() },
        body: JSON.stringify({ connection, subs }),
        keepalive: true,
      }).catch(() => {}),
  });
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
 * Reads (`doc` undefined) or replaces the feature's settings document; a replaced document shows in
 * every `useExtensionStorage()` of the page. Throws `RpcError`.
 *
 * @example
 * await storageRequest({ theme: 'dark', pageSize: 20 })
 */
export async function storageRequest(doc?: unknown, featureId?: string): Promise<unknown> {
  if (doc !== undefined) return sharedStorage(featureId).save(doc);
  return readDocument(knownFeature(featureId));
}

/** A feature's settings document as the page last saw it; what every `useExtensionStorage()` shows. */
export interface StorageState {
  /** The document, `undefined` until the first answer. */
  data: unknown;
  /** The last read or save failed with this (the document stays as it was). */
  error: RpcError | undefined;
  /** True until the first answer. */
  loading: boolean;
}

/** The page's one copy of a feature's settings document, for the framework bindings. */
export interface SharedStorage {
  /** The state now: the same object until it changes. */
  current: () => StorageState;
  /** Calls `listener` on each change and starts a read; returns the unsubscribe function. */
  subscribe: (listener: () => void) => () => void;
  /** Replaces the document; every subscriber shows the saved one. Rejects with `RpcError`. */
  save: (doc: unknown) => Promise<unknown>;
}

const documents = new Map<string, SharedStorage>();
/** What a page that names no feature gets: the usage error, at once. */
let noFeature: SharedStorage | undefined;

/**
 * The settings document of `featureId` (default: the page's feature), one copy per page, shared by
 * every `useExtensionStorage()` of React and Vue: a save by one shows in all. Internal: the bindings
 * build on it.
 *
 * @example
 * const storage = sharedStorage()
 * const stop = storage.subscribe(() => render(storage.current()))
 */
export function sharedStorage(featureId?: string): SharedStorage {
  let id: string;
  try {
    id = knownFeature(featureId);
  } catch (error) {
    const state: StorageState = { data: undefined, error: error as RpcError, loading: false };
    noFeature ??= { current: () => state, subscribe: () => () => {}, save: () => Promise.reject(error) };
    return noFeature;
  }
  let storage = documents.get(id);
  if (!storage) documents.set(id, (storage = createSharedStorage(id)));
  return storage;
}

function createSharedStorage(featureId: string): SharedStorage {
  let state: StorageState = { data: undefined, error: undefined, loading: true };
  const listeners = new Set<() => void>();
  // Every save starts a new epoch: the answer of an older save is out of date.
  let epoch = 0;
  // Saves that succeeded: a read that started before one brings the document before it. A save
  // that failed changed nothing, so a read around it still holds.
  let saved = 0;
  let saving = 0;
  let reading = false;
  const show = (next: Partial<StorageState>) => {
    state = { ...state, loading: false, ...next };
    for (const listener of listeners) listener();
  };
  /** A read's answer shows when no save succeeded since it started, and none is under way. */
  const holds = (at: number) => at === saved && !saving;
  const read = () => {
    // One read at a time; a save under way brings the newest document itself.
    if (reading || saving) return;
    reading = true;
    const at = saved;
    readDocument(featureId)
      .then(
        (data) => holds(at) && show({ data, error: undefined }),
        (error: RpcError) => holds(at) && show({ error }),
      )
      .finally(() => (reading = false));
  };
  // While shown, the document is live: a save in another tab, by another user, shows here too.
  let stopLive: (() => void) | null = null;
  const startLive = () => {
    if (!isLive(readDocument)) return read();
    const call: RelayCall = { kind: 'storage', featureId, method: 'GET' };
    stopLive = keepLive(
      call,
      'the settings document',
      false,
      {
        // A save under way brings the newest document itself; after it, the host pushes it too.
        onData: (data) => !saving && show({ data, error: undefined }),
        onError: (error) => !saving && show({ error }),
        onStatus: () => {},
      },
      () => {
        const at = saved;
        return () => at === saved;
      },
    );
  };
  return {
    current: () => state,
    subscribe(listener) {
      listeners.add(listener);
      if (!stopLive) startLive();
      return () => {
        listeners.delete(listener);
        if (listeners.size === 0 && stopLive) {
          stopLive();
          stopLive = null;
        }
      };
    },
    async save(doc) {
      const mine = ++epoch;
      saving++;
      try {
        const call: RelayCall = { kind: 'storage', featureId, method: 'PUT', body: JSON.stringify(doc) };
        const data = await request(call, 'the settings document');
        saved++;
        if (mine === epoch) show({ data, error: undefined });
        return data;
      } catch (error) {
        if (mine === epoch) show({ error: error as RpcError });
        throw error;
      } finally {
        saving--;
        // A failed save before anything showed: the read it set aside is read again (the save's
        // error stays shown beside the document).
        if (!saving && state.data === undefined && mine === epoch) {
          const at = saved;
          readDocument(featureId).then(
            (data) => holds(at) && show({ data }),
            () => {},
          );
        }
      }
    },
  };
}

function readDocument(featureId: string): Promise<unknown> {
  return request({ kind: 'storage', featureId, method: 'GET' }, 'the settings document');
}

function storagePath(featureId: string): string {
  return `${STORAGE_PREFIX}/${encodeURIComponent(featureId)}`;
}

/** `featureId`, or the page's feature; none known is a usage error that says the fix. */
function knownFeature(featureId: string | undefined): string {
  const id = featureId ?? settings.featureId;
  if (id) return id;
  throw new RpcError(
    400,
    'useExtensionStorage(): no featureId known for the settings document. Pass it, ' +
      'useExtensionStorage(\'feature-my-feature\') (the "id" of feature.json), or call ' +
      "configureRpc({ featureId: 'feature-my-feature' }) first; a page that imports a server module " +
      'knows it already.',
    null,
    { usage: true },
  );
}
