/**
 * The Vue composables against a small RPC host on a loopback socket whose answers can be held back,
 * through the real browser client (fetch, RpcError) and Vue's own reactivity and effect scopes.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, expectTypeOf, it, vi } from 'vitest';
import { computed, effectScope, nextTick, reactive, ref, type EffectScope } from 'vue';
import { configureRpc, createServerFunction, RpcError } from './client.js';
import type * as react from './react.js';
import { defineSchema } from './schema.js';
import type { ServerContext } from './server.js';
import { query } from './handlers.js';
import { v } from './validators.js';
import * as vue from './vue.js';

const { useExtensionStorage, useMutation, useQuery } = vue;
const FEATURE = 'feature-vue-unit';

// How the plugin hands server functions to a component: a proxy, typed as the server module is.
type Note = { id: string; text: string; editedAt: Date };
const getNote = createServerFunction(FEATURE, 'getNote') as unknown as (
  ctx: ServerContext,
  id: string,
) => Promise<Note>;
const listNotes = createServerFunction(FEATURE, 'listNotes') as unknown as (
  ctx: ServerContext,
  filter: { prefix: string },
) => Promise<string[]>;
const saveNote = createServerFunction(FEATURE, 'saveNote') as unknown as (
  ctx: ServerContext,
  id: string,
  text: string,
) => Promise<{ saved: true }>;
const countNotes = createServerFunction(FEATURE, 'countNotes') as unknown as typeof countHandler;
const countHandler = query({ args: [v.int()], handler: (_ctx, min) => min + 1 });

/** The host's notes; `hold` delays the answers about one note id by that many milliseconds. */
const notes = new Map<string, string>();
const hold = new Map<string, number>();
/** Every call the host answered, as `fn(args)`. */
const calls: string[] = [];
/** Settings documents by featureId; `storageHold` delays the answer to the next read (GET). */
const documents = new Map<string, unknown>();
let storageHold = 0;
/** Every storage call the host answered, as `METHOD featureId`. */
const storageCalls: string[] = [];
let server: Server;

beforeAll(async () => {
  server = createServer(async (req, res) => {
    let body = '';
    for await (const chunk of req) body += String(chunk);
    const answer = (status: number, value: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json', 'x-request-id': 'req-1' });
      res.end(JSON.stringify(value));
    };
    // A host without live queries: the composables answer once and refetch after a mutation.
    if (req.url?.startsWith('/_live/')) return answer(404, { error: 'Not found', requestId: 'req-1' });
    if (req.url?.startsWith('/_storage/')) {
      const featureId = decodeURIComponent(req.url.slice('/_storage/'.length));
      storageCalls.push(`${req.method} ${featureId}`);
      if (req.method === 'PUT') documents.set(featureId, JSON.parse(body));
      const doc = documents.get(featureId) ?? {};
      if (req.method === 'GET' && storageHold) await new Promise((resolve) => setTimeout(resolve, storageHold));
      return answer(200, doc);
    }
    const fn = req.url?.split('/').pop() ?? '';
    const args = (JSON.parse(body) as { args: unknown[] }).args;
    calls.push(`${fn}(${JSON.stringify(args).slice(1, -1)})`);
    const id = String(args[0]);
    await new Promise((resolve) => setTimeout(resolve, hold.get(id) ?? 0));
    if (fn === 'getNote') {
      if (!notes.has(id)) return answer(404, { error: `No note ${id}`, requestId: 'req-1' });
      return answer(200, { id, text: notes.get(id), editedAt: new Date(0) });
    }
    if (fn === 'listNotes') {
      const { prefix } = args[0] as { prefix: string };
      return answer(
        200,
        [...notes.values()].filter((text) => text.startsWith(prefix)),
      );
    }
    if (fn === 'saveNote') {
      if (args[1] === '') return answer(422, { error: 'Invalid arguments: empty text', requestId: 'req-1' });
      notes.set(id, String(args[1]));
      return answer(200, { saved: true });
    }
    return answer(404, { error: `Function "${fn}" is not declared`, requestId: 'req-1' });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  configureRpc({ baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, featureId: FEATURE });
});

afterAll(() => new Promise((resolve) => server.close(resolve)));

let scopes: EffectScope[] = [];
beforeEach(() => {
  for (const scope of scopes) scope.stop();
  scopes = [];
  notes.clear();
  hold.clear();
  calls.length = 0;
  notes.set('a', 'first').set('b', 'second');
  storageHold = 0;
  storageCalls.length = 0;
});

/** Runs composables the way a component's setup does: inside an effect scope the test can end. */
function setup<T>(body: () => T): { state: T; scope: EffectScope } {
  const scope = effectScope();
  scopes.push(scope);
  return { state: scope.run(body)!, scope };
}

const settled = (loading: { value: boolean }) => expect.poll(() => loading.value).toBe(false);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('useQuery', () => {
  it('loads at once, and again when a ref argument changes', async () => {
    const id = ref('a');
    const { state } = setup(() => useQuery(getNote, id));
    expect([state.loading.value, state.data.value]).toEqual([true, undefined]);
    await settled(state.loading);
    expect(state.data.value).toEqual({ id: 'a', text: 'first', editedAt: new Date(0).toJSON() });

    id.value = 'b';
    await nextTick();
    expect(state.loading.value).toBe(true);
    expect(state.data.value?.text).toBe('first'); // the old data stays until the new answer
    await settled(state.loading);
    expect(state.data.value?.text).toBe('second');
    expect(calls).toEqual(['getNote("a")', 'getNote("b")']);
  });

  it('takes getters, computed refs and reactive objects, and calls again only when their JSON changes', async () => {
    const props = reactive({ id: 'a' });
    const filter = reactive({ prefix: 'f' });
    const { state } = setup(() => ({
      byGetter: useQuery(getNote, () => props.id),
      byComputed: useQuery(
        getNote,
        computed(() => props.id),
      ),
      byObject: useQuery(listNotes, filter),
    }));
    await settled(state.byObject.loading);
    expect(state.byObject.data.value).toEqual(['first']);

    filter.prefix = 's';
    props.id = 'b';
    await expect.poll(() => state.byObject.data.value).toEqual(['second']);
    await expect
      .poll(() => [state.byGetter.data.value?.text, state.byComputed.data.value?.text])
      .toEqual(['second', 'second']);
    filter.prefix = 's'; // the same value again: no call
    await sleep(50);
    expect(calls.filter((c) => c.startsWith('listNotes'))).toEqual([
      'listNotes({"prefix":"f"})',
      'listNotes({"prefix":"s"})',
    ]);
  });

  it('shows the newest call even when an older one answers last', async () => {
    hold.set('a', 300);
    const id = ref('a');
    const { state } = setup(() => useQuery(getNote, id));
    await sleep(20);
    id.value = 'b';
    await settled(state.loading);
    expect(state.data.value?.text).toBe('second');
    await sleep(400); // the answer about "a" has arrived by now
    expect(state.data.value?.text).toBe('second');
    expect(calls).toEqual(['getNote("a")', 'getNote("b")']);
  });

  it('gives the failure as an RpcError with status and request id, and keeps the last data', async () => {
    const id = ref('a');
    const { state } = setup(() => useQuery(getNote, id));
    await settled(state.loading);
    id.value = 'missing';
    await expect.poll(() => state.error.value).toBeInstanceOf(RpcError);
    expect(state.error.value).toMatchObject({ status: 404, message: 'No note missing', requestId: 'req-1' });
    expect([state.loading.value, state.data.value?.text]).toEqual([false, 'first']);

    id.value = 'b';
    await expect.poll(() => state.data.value?.text).toBe('second');
    expect(state.error.value).toBeUndefined();
  });

  it('refetch() calls again with the current arguments', async () => {
    const { state } = setup(() => useQuery(getNote, 'a'));
    await settled(state.loading);
    notes.set('a', 'changed elsewhere');
    await state.refetch();
    expect(state.data.value?.text).toBe('changed elsewhere');
  });

  it('stops with its scope: no call on a later change, and an answer in flight is dropped', async () => {
    hold.set('a', 200);
    const id = ref('a');
    const { state, scope } = setup(() => useQuery(getNote, id));
    await sleep(20);
    scope.stop();
    await sleep(300);
    expect([state.loading.value, state.data.value]).toEqual([true, undefined]);
    id.value = 'b';
    await sleep(50);
    expect(calls).toEqual(['getNote("a")']);
  });
});

describe('useMutation', () => {
  it("refetches the feature's live queries after a success, before mutate() resolves", async () => {
    const { state } = setup(() => ({ note: useQuery(getNote, 'a'), save: useMutation(saveNote) }));
    await settled(state.note.loading);
    const done = state.save.mutate('a', 'rewritten');
    expect(state.save.pending.value).toBe(true);
    expect(await done).toEqual({ saved: true });
    expect([state.save.pending.value, state.save.data.value]).toEqual([false, { saved: true }]);
    expect(state.note.data.value?.text).toBe('rewritten');
  });

  it('rejects with the RpcError and shows it in error; a stopped query is not refetched', async () => {
    const { state, scope } = setup(() => useQuery(getNote, 'a'));
    await settled(state.loading);
    scope.stop();
    const { state: save } = setup(() => useMutation(saveNote));
    const failure = await save.mutate('a', '').catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(RpcError);
    expect(save.error.value).toBe(failure);
    expect((failure as RpcError).status).toBe(422);
    expect(save.pending.value).toBe(false);
    await save.mutate('a', 'again');
    expect(save.error.value).toBeUndefined();
    expect(calls).toEqual(['getNote("a")', 'saveNote("a","")', 'saveNote("a","again")']);
  });
});

describe('useExtensionStorage', () => {
  it('reads the settings document and replaces it with save()', async () => {
    documents.set('feature-read-save', { theme: 'light' });
    const { state } = setup(() => useExtensionStorage<{ theme: string }>('feature-read-save'));
    await settled(state.loading);
    expect(state.data.value).toEqual({ theme: 'light' });
    await state.save({ theme: 'dark' });
    expect([state.data.value, documents.get('feature-read-save')]).toEqual([{ theme: 'dark' }, { theme: 'dark' }]);
  });

  it('shares one document between its users: a save by one shows in the others and in a later one', async () => {
    documents.set(FEATURE, { theme: 'light' });
    const { state } = setup(() => ({ banner: useExtensionStorage(), picker: useExtensionStorage() }));
    await settled(state.banner.loading);
    expect([state.banner.data.value, state.picker.data.value]).toEqual([{ theme: 'light' }, { theme: 'light' }]);
    expect(storageCalls).toEqual([`GET ${FEATURE}`]); // the two users asked once

    await state.picker.save({ theme: 'dark' });
    expect([state.banner.data.value, state.picker.data.value]).toEqual([{ theme: 'dark' }, { theme: 'dark' }]);
    const { state: later } = setup(() => useExtensionStorage());
    expect([later.loading.value, later.data.value]).toEqual([false, { theme: 'dark' }]);
  });

  it('keeps a save when a read that started before it answers after it', async () => {
    documents.set('feature-race', { theme: 'light' });
    storageHold = 300;
    const { state } = setup(() => useExtensionStorage('feature-race'));
    await sleep(50); // the read is at the host, which holds its answer
    storageHold = 0;
    await state.save({ theme: 'dark' });
    await sleep(400); // the read's answer, the old document, has arrived by now
    expect(state.data.value).toEqual({ theme: 'dark' });
    expect(state.loading.value).toBe(false);
  });

  it('reads the document of the new feature when a featureId ref changes, and stops with its scope', async () => {
    documents.set('feature-a', { theme: 'a' }).set('feature-b', { theme: 'b' });
    const id = ref('feature-a');
    const { state, scope } = setup(() => useExtensionStorage(id));
    await expect.poll(() => state.data.value).toEqual({ theme: 'a' });
    id.value = 'feature-b';
    await expect.poll(() => state.data.value).toEqual({ theme: 'b' });
    scope.stop();
    const { state: other } = setup(() => useExtensionStorage('feature-b'));
    await other.save({ theme: 'b2' });
    expect(state.data.value).toEqual({ theme: 'b' });
  });

  it('with no featureId known, gives a usage error that says the fix, sends nothing, and is no network error', async () => {
    // A page whose client never saw a proxy nor configureRpc({ featureId }).
    vi.resetModules();
    const fresh = await import('./vue.js');
    const { state } = setup(() => fresh.useExtensionStorage());
    expect(state.loading.value).toBe(false);
    const failure = state.error.value;
    expect(failure?.name).toBe('RpcError');
    expect(failure).toMatchObject({ status: 400, isNetworkError: false, isUsageError: true, requestId: null });
    expect(failure?.message).toMatch(/^useExtensionStorage\(\): no featureId known/);
    expect(failure?.message).toContain('configureRpc({ featureId:');
    await expect(state.save({ theme: 'dark' })).rejects.toBe(failure);
    expect(storageCalls).toEqual([]);
  });
});

describe('types', () => {
  it('are the React binding types, and each argument may be a value, a ref or a getter', () => {
    expectTypeOf<vue.ClientArgs<typeof getNote>>().toEqualTypeOf<react.ClientArgs<typeof getNote>>();
    expectTypeOf<vue.ClientArgs<typeof countHandler>>().toEqualTypeOf<react.ClientArgs<typeof countHandler>>();
    expectTypeOf<vue.ClientResult<typeof getNote>>().toEqualTypeOf<react.ClientResult<typeof getNote>>();
    const schema = defineSchema({}, { storage: { theme: v.string() } });
    expectTypeOf<vue.StorageOf<typeof schema>>().toEqualTypeOf<react.StorageOf<typeof schema>>();

    const id = ref('a');
    const { state } = setup(() => ({
      note: useQuery(getNote, () => id.value),
      count: useQuery(countNotes, ref(2)),
      save: useMutation(saveNote),
    }));
    // Dates arrive as strings, as at runtime.
    expectTypeOf(state.note.data.value).toEqualTypeOf<{ id: string; text: string; editedAt: string } | undefined>();
    expectTypeOf(state.count.data.value).toEqualTypeOf<number | undefined>();
    expectTypeOf(state.note.error.value).toEqualTypeOf<RpcError | undefined>();
    expectTypeOf(state.save.mutate).parameters.toEqualTypeOf<[id: string, text: string]>();

    // Wrong calls, checked by the compiler only.
    const wrongCalls = () => {
      // @ts-expect-error getNote takes a string
      useQuery(getNote, ref(1));
      // @ts-expect-error getNote needs its argument
      useQuery(getNote);
      // @ts-expect-error countNotes takes a number
      useQuery(countNotes, () => 'two');
      // @ts-expect-error the state is the composable's to write
      state.note.data.value = undefined;
    };
    expectTypeOf(wrongCalls).toBeFunction();
  });
});
