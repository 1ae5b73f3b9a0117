/**
 * Vue 3 composables over server functions, the counterpart of the React hooks. Pass the imported
 * server function (its client proxy). State comes back as read-only refs, so destructuring keeps it
 * reactive and templates unwrap it. Each query argument may be a plain value, a ref or a getter;
 * the query runs again when one of them changes (compared as JSON). A query stops when its effect
 * scope (the component) is disposed, and an answer that arrives after a newer call started, or after
 * the scope ended, is dropped.
 *
 * @example
 * <script setup lang="ts">
 * const props = defineProps<{ id: string }>()
 * const { data, error, loading, refetch } = useQuery(getNote, () => props.id) // runs again on a new id
 * const { mutate, pending } = useMutation(editNote) // refetches this feature's queries on success
 * </script>
 * <template>
 *   <p v-if="error" role="alert">{{ error.message }}</p>
 *   <p v-else-if="data">{{ data.text }}</p>
 *   <button :disabled="pending" @click="mutate(id, { text: 'new' })">Save</button>
 * </template>
 */
import {
  computed,
  getCurrentScope,
  onScopeDispose,
  shallowRef,
  toValue,
  watch,
  type MaybeRefOrGetter,
  type ShallowRef,
} from 'vue';
import { isLive, sharedStorage, subscribe, type LiveStatus, type ServerFunctionProxy } from './client.js';
import type { ClientArgs, ClientResult, RegisteredStorage } from './client-types.js';
import type { RpcError } from './rpc-error.js';

export type { ClientArgs, ClientResult } from './client-types.js';
export { notLive, subscribe, type LiveStatus } from './client.js';
export type { StorageOf } from './schema.js';

type AnyProxy = (...args: never[]) => unknown;

/** Query arguments as Vue code holds them: each a value, a ref, a computed or a getter. */
export type ReactiveArgs<A> = { [I in keyof A]: MaybeRefOrGetter<A[I]> };

/** A ref the caller reads and the composable writes. */
export type ReadonlyRef<T> = Readonly<ShallowRef<T>>;

export interface QueryState<T> {
  data: ReadonlyRef<T | undefined>;
  error: ReadonlyRef<RpcError | undefined>;
  loading: ReadonlyRef<boolean>;
  refetch: () => Promise<void>;
  /**
   * `live`: the host pushes each new result; `connecting`/`reconnecting`: the push connection is
   * not up (the data may be stale); `off`: answered once (see `notLive`, `configureRpc({ live })`).
   */
  live: ReadonlyRef<LiveStatus>;
}

export interface MutationState<F extends AnyProxy> {
  /** Calls the function; rejects with `RpcError` on failure (the error is also in `error`). */
  mutate: (...args: ClientArgs<F>) => Promise<ClientResult<F>>;
  data: ReadonlyRef<ClientResult<F> | undefined>;
  error: ReadonlyRef<RpcError | undefined>;
  pending: ReadonlyRef<boolean>;
}

/** Refetch callbacks of mounted queries that are not live, by featureId. */
const onceQueries = new Map<string, Set<() => Promise<void>>>();

/**
 * Calls a server function at once and whenever an argument changes (compared as JSON), and keeps
 * the result live: after a write anywhere (another tab, user or host) that changes it, the host
 * pushes the new result. The query stops with the component (the effect scope).
 * `useQuery(notLive(fn), ...)` answers once instead.
 *
 * @example
 * const page = ref(1)
 * const { data, live } = useQuery(listRules, () => ({ limit: 10, page: page.value }))
 */
export function useQuery<F extends AnyProxy>(fn: F, ...args: ReactiveArgs<ClientArgs<F>>): QueryState<ClientResult<F>> {
  const data = shallowRef<ClientResult<F>>();
  const error = shallowRef<RpcError>();
  const loading = shallowRef(true);
  const live = shallowRef<LiveStatus>(isLive(fn) ? 'connecting' : 'off');
  // Reading every argument here tracks refs, getters and reactive objects, however deep.
  const key = computed(() => JSON.stringify((args as MaybeRefOrGetter<unknown>[]).map((arg) => toValue(arg))));
  let latest = 0;
  let running = true;
  let stop: (() => void) | null = null;
  const refetch = async () => {
    const attempt = ++latest;
    loading.value = true;
    try {
      const result = (await call(fn, JSON.parse(key.value) as unknown[])) as ClientResult<F>;
      if (running && attempt === latest) {
        data.value = result;
        error.value = undefined;
        loading.value = false;
      }
    } catch (failure) {
      if (running && attempt === latest) {
        error.value = failure as RpcError;
        loading.value = false;
      }
    }
  };
  /** Subscribes for `current` arguments; resolves at its first answer. */
  const start = (current: string) =>
    new Promise<void>((answered) => {
      stop?.();
      loading.value = true;
      stop = subscribe(
        fn,
        JSON.parse(current) as ClientArgs<F>,
        (result) => {
          latest++;
          data.value = result;
          error.value = undefined;
          loading.value = false;
          answered();
        },
        (failure) => {
          error.value = failure;
          loading.value = false;
          answered();
        },
        { onStatus: (status) => (live.value = status) },
      );
    });
  watch(key, (current) => void start(current), { immediate: true });
  const featureId = featureOf(fn);
  const set = onceQueries.get(featureId) ?? new Set();
  // After a page's mutation, a query that is not live (its call failed, its connection is down)
  // calls again: as a new subscription when it may be live, else once.
  const afterMutation = () => {
    if (live.value === 'live') return Promise.resolve();
    return isLive(fn) ? start(key.value) : refetch();
  };
  set.add(afterMutation);
  onceQueries.set(featureId, set);
  whenScopeEnds(() => {
    running = false;
    stop?.();
    set.delete(afterMutation);
  });
  return { data, error, loading, refetch, live };
}

/**
 * Wraps a server function that changes data; after it succeeds, every `useQuery` of the same
 * feature that is not live refetches (and `mutate` resolves once they have); live ones get the
 * host's push.
 *
 * @example
 * const { mutate, pending, error } = useMutation(addRule)
 * await mutate({ text: 'Be kind', votes: 0 })
 */
export function useMutation<F extends AnyProxy>(fn: F): MutationState<F> {
  const data = shallowRef<ClientResult<F>>();
  const error = shallowRef<RpcError>();
  const pending = shallowRef(false);
  const mutate = async (...args: ClientArgs<F>): Promise<ClientResult<F>> => {
    pending.value = true;
    error.value = undefined;
    try {
      const result = (await call(fn, args as unknown[])) as ClientResult<F>;
      data.value = result;
      pending.value = false;
      await Promise.all([...(onceQueries.get(featureOf(fn)) ?? [])].map((refetch) => refetch()));
      return result;
    } catch (failure) {
      data.value = undefined;
      error.value = failure as RpcError;
      pending.value = false;
      throw failure;
    }
  };
  return { mutate, data, error, pending };
}

export interface ExtensionStorage<T> {
  data: ReadonlyRef<Partial<T> | undefined>;
  error: ReadonlyRef<RpcError | undefined>;
  loading: ReadonlyRef<boolean>;
  /** Replaces the document (validated by the host: 422 with the field path on a bad value). */
  save: (next: T) => Promise<void>;
}

/**
 * The feature's small settings document, one per installation, typed from `server/schema.ts`
 * (through the plugin's `.favn/types`; or name it: `useExtensionStorage<StorageOf<typeof schema>>()`).
 * `featureId` may be a ref or a getter; the document is read again when it changes.
 *
 * @example
 * const { data, save } = useExtensionStorage()
 */
export function useExtensionStorage<T = RegisteredStorage>(
  featureId?: MaybeRefOrGetter<string | undefined>,
): ExtensionStorage<T> {
  const data = shallowRef<Partial<T>>();
  const error = shallowRef<RpcError>();
  const loading = shallowRef(true);
  // One document per feature and page: every user shows the same one, and a save updates them all.
  let storage = sharedStorage(toValue(featureId));
  let unsubscribe = () => {};
  const show = () => {
    const state = storage.current();
    data.value = state.data as Partial<T> | undefined;
    error.value = state.error;
    loading.value = state.loading;
  };
  watch(
    () => toValue(featureId),
    (id) => {
      unsubscribe();
      storage = sharedStorage(id);
      show();
      unsubscribe = storage.subscribe(show);
    },
    { immediate: true },
  );
  whenScopeEnds(() => unsubscribe());
  const save = async (next: T) => void (await storage.save(next));
  return { data, error, loading, save };
}

/** In client code `fn` is the proxy, which takes the client arguments only. */
function call(fn: AnyProxy, args: unknown[]): Promise<unknown> {
  return Promise.resolve((fn as unknown as (...a: unknown[]) => unknown)(...args));
}

function featureOf(fn: AnyProxy): string {
  return (fn as unknown as Partial<ServerFunctionProxy>).featureId ?? '';
}

/** Runs `stop` when the current effect scope ends; outside any scope the state lives as long as the page. */
function whenScopeEnds(stop: () => void): void {
  if (getCurrentScope()) onScopeDispose(stop);
}
