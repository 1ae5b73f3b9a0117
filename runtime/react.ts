/**
 * React hooks over server functions. Pass the imported server function (its client proxy).
 *
 * @example
 * const { data, error, loading, refetch } = useQuery(listRules, { limit: 10 })
 * const { mutate, pending } = useMutation(addRule) // refetches this feature's queries on success
 */
import { useCallback, useEffect, useRef, useState } from 'react';
import type { ServerFunctionProxy } from './client.js';
import type { RpcError } from './rpc-error.js';

type AnyProxy = (...args: never[]) => Promise<unknown>;

export interface QueryState<T> {
  data: T | undefined;
  error: RpcError | undefined;
  loading: boolean;
  refetch: () => Promise<void>;
}

export interface MutationState<F extends AnyProxy> {
  mutate: (...args: Parameters<F>) => Promise<Awaited<ReturnType<F>>>;
  data: Awaited<ReturnType<F>> | undefined;
  error: RpcError | undefined;
  pending: boolean;
}

/** Refetch callbacks of mounted queries, by featureId. */
const liveQueries = new Map<string, Set<() => Promise<void>>>();

/**
 * Calls a server function when the component mounts and whenever `args` change (compared as JSON).
 */
export function useQuery<F extends AnyProxy>(fn: F, ...args: Parameters<F>): QueryState<Awaited<ReturnType<F>>> {
  const [state, setState] = useState<{ data?: Awaited<ReturnType<F>>; error?: RpcError; loading: boolean }>({ loading: true });
  const key = JSON.stringify(args);
  const latest = useRef(0);
  const refetch = useCallback(async () => {
    const call = ++latest.current;
    setState((s) => ({ ...s, loading: true }));
    try {
      const data = (await fn(...(JSON.parse(key) as Parameters<F>))) as Awaited<ReturnType<F>>;
      if (call === latest.current) setState({ data, loading: false });
    } catch (error) {
      if (call === latest.current) setState((s) => ({ data: s.data, error: error as RpcError, loading: false }));
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
  const [state, setState] = useState<{ data?: Awaited<ReturnType<F>>; error?: RpcError; pending: boolean }>({ pending: false });
  const mutate = useCallback(
    async (...args: Parameters<F>): Promise<Awaited<ReturnType<F>>> => {
      setState((s) => ({ ...s, pending: true, error: undefined }));
      try {
        const data = (await fn(...args)) as Awaited<ReturnType<F>>;
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

function featureOf(fn: AnyProxy): string {
  return (fn as unknown as Partial<ServerFunctionProxy>).featureId ?? '';
}
