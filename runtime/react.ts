/**
 * React hooks over server functions. Pass the imported server function (its client proxy).
 *
 * @example
 * const { data, error, loading, live } = useQuery(listRules, { limit: 10 }) // stays live
 * const { mutate, pending } = useMutation(addRule) // every tab's listRules shows the new rule
 */
import { useCallback, useEffect, useRef, useState, useSyncExternalStore } from 'react';
import {
  isLive,
  sharedStorage,
  subscribe,
  type LiveStatus,
  type ServerFunctionProxy,
  type StorageState,
} from './client.js';
import type { ClientArgs, ClientResult, RegisteredStorage } from './client-types.js';
import type { RpcError } from './rpc-error.js';

export type { ClientArgs, ClientResult } from './client-types.js';
export { notLive, subscribe, type LiveStatus } from './client.js';
export type { StorageOf } from './schema.js';

type AnyProxy = (...args: never[]) => unknown;

export interface QueryState<T> {
  data: T | undefined;
  error: RpcError | undefined;
  loading: boolean;
  refetch: () => Promise<void>;
  /**
   * `live`: the host pushes each new result; `connecting`/`reconnecting`: the push connection is
   * not up (the data may be stale); `off`: answered once (see `notLive`, `configureRpc({ live })`).
   */
  live: LiveStatus;
}

export interface MutationState<F extends AnyProxy> {
  /** Calls the function; rejects with `RpcError` on failure (the error is also in `error`). */
  mutate: (...args: ClientArgs<F>) => Promise<ClientResult<F>>;
  data: ClientResult<F> | undefined;
  error: RpcError | undefined;
  pending: boolean;
}

/** Refetch callbacks of mounted queries that are not live, by featureId. */
const onceQueries = new Map<string, Set<() => Promise<void>>>();

interface QueryData<T> {
  data?: T;
  error?: RpcError;
  loading: boolean;
  live: LiveStatus;
}

/**
 * Calls a server function when the component mounts and whenever `args` change (compared as JSON),
 * and keeps the result live: after a write anywhere (another tab, user or host) that changes it,
 * the host pushes the new result. `useQuery(notLive(fn), ...)` answers once instead.
 */
export function useQuery<F extends AnyProxy>(fn: F, ...args: ClientArgs<F>): QueryState<ClientResult<F>> {
  const [state, setState] = useState<QueryData<ClientResult<F>>>(() => ({
    loading: true,
    live: isLive(fn) ? 'connecting' : 'off',
  }));
  const key = JSON.stringify(args);
  const latest = useRef(0);
  const status = useRef<LiveStatus>('connecting');

  const refetch = useCallback(async () => {
    const attempt = ++latest.current;
    setState((s) => ({ ...s, loading: true }));
    try {
      const data = (await call(fn, JSON.parse(key) as unknown[])) as ClientResult<F>;
      if (attempt === latest.current) setState((s) => ({ data, loading: false, live: s.live }));
    } catch (error) {
      if (attempt === latest.current) setState((s) => ({ ...s, error: error as RpcError, loading: false }));
    }
  }, [fn, key]);
  useEffect(() => {
    const featureId = featureOf(fn);
    /** Subscribes; resolves at its first answer. */
    const start = () =>
      new Promise<void>((answered) => {
        setState((s) => ({ ...s, loading: true }));
        stop = subscribe(
          fn,
          JSON.parse(key) as ClientArgs<F>,
          (data) => {
            latest.current++;
            setState((s) => ({ data, loading: false, live: s.live }));
            answered();
          },
          (error) => {
            setState((s) => ({ ...s, error, loading: false }));
            answered();
          },
          {
            onStatus: (live) => {
              status.current = live;
              setState((s) => (s.live === live ? s : { ...s, live }));
            },
          },
        );
      });
    let stop = () => {};
    void start();
    // After a page's mutation, a query that is not live (its call failed, its connection is down)
    // calls again: as a new subscription when it may be live, else once.
    const set = onceQueries.get(featureId) ?? new Set();
    const afterMutation = () => {
      if (status.current === 'live') return Promise.resolve();
      if (!isLive(fn)) return refetch();
      stop();
      return start();
    };
    set.add(afterMutation);
    onceQueries.set(featureId, set);
    return () => {
      set.delete(afterMutation);
      stop();
    };
  }, [fn, key, refetch]);
  return { data: state.data, error: state.error, loading: state.loading, refetch, live: state.live };
}

/**
 * Wraps a server function that changes data; after it succeeds, every mounted `useQuery` of the
 * same feature that is not live refetches (live ones get the host's push).
 */
export function useMutation<F extends AnyProxy>(fn: F): MutationState<F> {
  const [state, setState] = useState<{ data?: ClientResult<F>; error?: RpcError; pending: boolean }>({
    pending: false,
  });
  const mutate = useCallback(
    async (...args: ClientArgs<F>): Promise<ClientResult<F>> => {
      setState((s) => ({ ...s, pending: true, error: undefined }));
      try {
        const data = (await call(fn, args as unknown[])) as ClientResult<F>;
        setState({ data, pending: false });
        await Promise.all([...(onceQueries.get(featureOf(fn)) ?? [])].map((refetch) => refetch()));
        return data;
      } catch (error) {
        setState({ error: error as RpcError, pending: false });
        throw error;
      }
    },
    [fn],
  );
  return { mutate, data: state.data, error: state.error, pending: state.pending };
}

/** In client code `fn` is the proxy, which takes the client arguments only. */
function call(fn: AnyProxy, args: unknown[]): Promise<unknown> {
  return Promise.resolve((fn as unknown as (...a: unknown[]) => unknown)(...args));
}

function featureOf(fn: AnyProxy): string {
  return (fn as unknown as Partial<ServerFunctionProxy>).featureId ?? '';
}

export interface ExtensionStorage<T> {
  data: Partial<T> | undefined;
  error: RpcError | undefined;
  loading: boolean;
  /** Replaces the document (validated by the host: 422 with the field path on a bad value). */
  save: (next: T) => Promise<void>;
}

/**
 * The feature's small settings document, one per installation, typed from `server/schema.ts`
 * (through the plugin's `.favn/types`; or name it: `useExtensionStorage<StorageOf<typeof schema>>()`).
 *
 * @example
 * const { data, save } = useExtensionStorage()
 * await save({ theme: 'dark', pageSize: 20 })
 */
export function useExtensionStorage<T = RegisteredStorage>(featureId?: string): ExtensionStorage<T> {
  // One document per feature and page: every user shows the same one, and a save updates them all.
  const storage = sharedStorage(featureId);
  const state = useSyncExternalStore(storage.subscribe, storage.current, notReadYet);
  const save = useCallback(async (next: T) => void (await storage.save(next)), [storage]);
  return { data: state.data as Partial<T> | undefined, error: state.error, loading: state.loading, save };
}

/** What server rendering shows, and hydration starts from: the document is read in the browser. */
const NOT_READ_YET: StorageState = { data: undefined, error: undefined, loading: true };
const notReadYet = () => NOT_READ_YET;
