/**
 * React hooks over server functions. Pass the imported server function (its client proxy).
 *
 * @example
 * const { data, error, loading, refetch } = useQuery(listRules, { limit: 10 })
 * const { mutate, pending } = useMutation(addRule) // refetches this feature's queries on success
 */
import { useCallback, useEffect, useRef, useState } from 'react';
import { storageRequest, type ServerFunctionProxy } from './client.js';
import type { SchemaDefinition } from './schema.js';
import type { Infer, Validator } from './validators.js';
import type { RpcError } from './rpc-error.js';
import type { Jsonified, ServerContext } from './server.js';

type AnyProxy = (...args: never[]) => unknown;

/** Arguments the client passes: the server signature without its leading `ctx`. */
export type ClientArgs<F> = F extends (ctx: ServerContext, ...args: infer A) => unknown
  ? A
  : F extends (...args: infer A) => unknown
    ? A
    : never;

/** What the client receives: the awaited result after a JSON round trip. */
export type ClientResult<F> = F extends (...args: never[]) => infer R ? Jsonified<Awaited<R>> : never;

export interface QueryState<T> {
  data: T | undefined;
  error: RpcError | undefined;
  loading: boolean;
  refetch: () => Promise<void>;
}

export interface MutationState<F extends AnyProxy> {
  /** Calls the function; rejects with `RpcError` on failure (the error is also in `error`). */
  mutate: (...args: ClientArgs<F>) => Promise<ClientResult<F>>;
  data: ClientResult<F> | undefined;
  error: RpcError | undefined;
  pending: boolean;
}

/** Refetch callbacks of mounted queries, by featureId. */
const liveQueries = new Map<string, Set<() => Promise<void>>>();

/**
 * Calls a server function when the component mounts and whenever `args` change (compared as JSON).
 */
export function useQuery<F extends AnyProxy>(fn: F, ...args: ClientArgs<F>): QueryState<ClientResult<F>> {
  const [state, setState] = useState<{ data?: ClientResult<F>; error?: RpcError; loading: boolean }>({ loading: true });
  const key = JSON.stringify(args);
  const latest = useRef(0);
  const refetch = useCallback(async () => {
    const attempt = ++latest.current;
    setState((s) => ({ ...s, loading: true }));
    try {
      const data = (await call(fn, JSON.parse(key) as unknown[])) as ClientResult<F>;
      if (attempt === latest.current) setState({ data, loading: false });
    } catch (error) {
      if (attempt === latest.current) setState((s) => ({ data: s.data, error: error as RpcError, loading: false }));
    }
  }, [fn, key]);
  useEffect(() => {
    void refetch();
    const featureId = featureOf(fn);
    const set = liveQueries.get(featureId) ?? new Set();
    set.add(refetch);
    liveQueries.set(featureId, set);
    return () => void set.delete(refetch);
  }, [fn, refetch]);
  return { data: state.data, error: state.error, loading: state.loading, refetch };
}

/**
 * Wraps a server function that changes data; after it succeeds, every mounted `useQuery` of the
 * same feature refetches.
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
        await Promise.all([...(liveQueries.get(featureOf(fn)) ?? [])].map((refetch) => refetch()));
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

/** The settings document type of a schema: `StorageOf<typeof schema>`. */
export type StorageOf<S> = S extends SchemaDefinition
  ? S['storage'] extends Record<string, Validator>
    ? { [K in keyof S['storage']]: Infer<S['storage'][K]> }
    : never
  : never;

export interface ExtensionStorage<T> {
  data: Partial<T> | undefined;
  error: RpcError | undefined;
  loading: boolean;
  /** Replaces the document (validated by the host: 422 with the field path on a bad value). */
  save: (next: T) => Promise<void>;
}

/**
 * The feature's small settings document, one per installation, typed from `server/schema.ts`.
 *
 * @example
 * import type schema from '../server/schema'
 * const { data, save } = useExtensionStorage<StorageOf<typeof schema>>()
 */
export function useExtensionStorage<T = Record<string, unknown>>(featureId?: string): ExtensionStorage<T> {
  const [state, setState] = useState<{ data?: Partial<T>; error?: RpcError; loading: boolean }>({ loading: true });
  useEffect(() => {
    let live = true;
    storageRequest(undefined, featureId).then(
      (data) => live && setState({ data: data as Partial<T>, loading: false }),
      (error: RpcError) => live && setState({ error, loading: false }),
    );
    return () => void (live = false);
  }, [featureId]);
  const save = useCallback(
    async (next: T) => {
      try {
        const data = (await storageRequest(next, featureId)) as Partial<T>;
        setState({ data, loading: false });
      } catch (error) {
        setState((s) => ({ ...s, error: error as RpcError }));
        throw error;
      }
    },
    [featureId],
  );
  return { data: state.data, error: state.error, loading: state.loading, save };
}
