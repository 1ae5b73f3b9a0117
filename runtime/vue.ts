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
import { storageRequest, type ServerFunctionProxy } from './client.js';
import type { SchemaDefinition } from './schema.js';
import type { Infer, Validator } from './validators.js';
import type { RpcError } from './rpc-error.js';
import type { Jsonified, ServerContext } from './server.js';

type AnyProxy = (...args: never[]) => unknown;

// ClientArgs, ClientResult and StorageOf are written as in the React binding (a binding may not
// import another one); runtime/vue.test.ts checks that both give the same types.

/** Arguments the client passes: the server signature without its leading `ctx`. */
export type ClientArgs<F> = F extends (ctx: ServerContext, ...args: infer A) => unknown
  ? A
  : F extends (...args: infer A) => unknown
    ? A
    : never;

/** What the client receives: the awaited result after a JSON round trip. */
export type ClientResult<F> = F extends (...args: never[]) => infer R ? Jsonified<Awaited<R>> : never;

/** Query arguments as Vue code holds them: each a value, a ref, a computed or a getter. */
export type ReactiveArgs<A> = { [I in keyof A]: MaybeRefOrGetter<A[I]> };

/** A ref the caller reads and the composable writes. */
export type ReadonlyRef<T> = Readonly<ShallowRef<T>>;

export interface QueryState<T> {
  data: ReadonlyRef<T | undefined>;
  error: ReadonlyRef<RpcError | undefined>;
  loading: ReadonlyRef<boolean>;
  refetch: () => Promise<void>;
}

export interface MutationState<F extends AnyProxy> {
  /** Calls the function; rejects with `RpcError` on failure (the error is also in `error`). */
  mutate: (...args: ClientArgs<F>) => Promise<ClientResult<F>>;
  data: ReadonlyRef<ClientResult<F> | undefined>;
  error: ReadonlyRef<RpcError | undefined>;
  pending: ReadonlyRef<boolean>;
}

/** Refetch callbacks of live queries, by featureId. */
const liveQueries = new Map<string, Set<() => Promise<void>>>();

/**
 * Calls a server function at once and whenever an argument changes (compared as JSON); the call
 * stops with the component (the effect scope).
 *
 * @example
 * const page = ref(1)
 * const { data } = useQuery(listRules, () => ({ limit: 10, page: page.value }))
 */
export function useQuery<F extends AnyProxy>(fn: F, ...args: ReactiveArgs<ClientArgs<F>>): QueryState<ClientResult<F>> {
  const data = shallowRef<ClientResult<F>>();
  const error = shallowRef<RpcError>();
  const loading = shallowRef(true);
  // Reading every argument here tracks refs, getters and reactive objects, however deep.
  const key = computed(() => JSON.stringify((args as MaybeRefOrGetter<unknown>[]).map((arg) => toValue(arg))));
  let latest = 0;
  let live = true;
  const refetch = async () => {
    const attempt = ++latest;
    loading.value = true;
    try {
      const result = (await call(fn, JSON.parse(key.value) as unknown[])) as ClientResult<F>;
      if (live && attempt === latest) {
        data.value = result;
        error.value = undefined;
        loading.value = false;
      }
    } catch (failure) {
      if (live && attempt === latest) {
        error.value = failure as RpcError;
        loading.value = false;
      }
    }
  };
  watch(key, () => void refetch(), { immediate: true });
  const featureId = featureOf(fn);
  const set = liveQueries.get(featureId) ?? new Set();
  set.add(refetch);
  liveQueries.set(featureId, set);
  whenScopeEnds(() => {
    live = false;
    set.delete(refetch);
  });
  return { data, error, loading, refetch };
}

/**
 * Wraps a server function that changes data; after it succeeds, every live `useQuery` of the same
 * feature refetches (and `mutate` resolves once they have).
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
      await Promise.all([...(liveQueries.get(featureOf(fn)) ?? [])].map((refetch) => refetch()));
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

/** The settings document type of a schema: `StorageOf<typeof schema>`. */
export type StorageOf<S> = S extends SchemaDefinition
  ? S['storage'] extends Record<string, Validator>
    ? { [K in keyof S['storage']]: Infer<S['storage'][K]> }
    : never
  : never;

export interface ExtensionStorage<T> {
  data: ReadonlyRef<Partial<T> | undefined>;
  error: ReadonlyRef<RpcError | undefined>;
  loading: ReadonlyRef<boolean>;
  /** Replaces the document (validated by the host: 422 with the field path on a bad value). */
  save: (next: T) => Promise<void>;
}

/**
 * The feature's small settings document, one per installation, typed from `server/schema.ts`.
 * `featureId` may be a ref or a getter; the document is read again when it changes.
 *
 * @example
 * import type schema from '../server/schema'
 * const { data, save } = useExtensionStorage<StorageOf<typeof schema>>()
 */
export function useExtensionStorage<T = Record<string, unknown>>(
  featureId?: MaybeRefOrGetter<string | undefined>,
): ExtensionStorage<T> {
  const data = shallowRef<Partial<T>>();
  const error = shallowRef<RpcError>();
  const loading = shallowRef(true);
  const id = computed(() => toValue(featureId));
  let latest = 0;
  let live = true;
  /** Shows a document or a failure, unless a newer read or save started since `attempt` (or the scope ended). */
  const settle = (attempt: number, doc: Partial<T> | undefined, failure?: RpcError) => {
    if (!live || attempt !== latest) return;
    data.value = doc;
    error.value = failure;
    loading.value = false;
  };
  watch(
    id,
    (current) => {
      const attempt = ++latest;
      loading.value = true;
      storageRequest(undefined, current).then(
        (doc) => settle(attempt, doc as Partial<T>),
        (failure: RpcError) => settle(attempt, undefined, failure),
      );
    },
    { immediate: true },
  );
  whenScopeEnds(() => void (live = false));
  const save = async (next: T) => {
    // A read still under way would show the document as it was before this save.
    const attempt = ++latest;
    try {
      settle(attempt, (await storageRequest(next, id.value)) as Partial<T>);
    } catch (failure) {
      settle(attempt, data.value, failure as RpcError);
      throw failure;
    }
  };
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
