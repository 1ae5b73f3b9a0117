// Live queries through real parts: the host on a loopback port, PGlite, the push stream read as a
// browser reads it (fetch + server-sent events), and the browser client's own subscribe().
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { deleteRow, insertRow, queryRows } from '../../runtime/declarative.js';
import { defineSchema, defineTable } from '../../runtime/schema.js';
import type { ServerContext } from '../../runtime/server.js';
import { v } from '../../runtime/validators.js';
import { parseAuthConfig } from '../auth/auth-config.js';
import { createIdentify } from '../auth/create-identify.js';
import { openPglite } from '../data/pglite-client.js';
import type { SqlClient } from '../data/sql-client.js';
import { createHost, type Host } from '../host/host.js';
import { featureRuntime } from '../host/__fixtures__/contract-parts.js';
import type { FeatureRuntime } from '../feature/feature-runtime.js';
import { attachLiveSockets } from '../host/live-socket.js';
import { dataOf, openLiveStream } from './__fixtures__/live-stream.js';

const schema = defineSchema(
  { notes: defineTable({ body: v.string(), tenant: v.optional(v.string()) }), other: defineTable({ n: v.number() }) },
  { storage: { theme: v.optional(v.string()) } },
);

const fns = {
  listNotes: queryRows('notes', { scope: { tenant: 'visibility.tenantId' } }),
  addNote: insertRow('notes', { scope: { tenant: 'visibility.tenantId' } }),
  removeNote: deleteRow('notes', { scope: { tenant: 'visibility.tenantId' } }),
  addOther: insertRow('other'),
  async countNotes(ctx: ServerContext) {
    const { rows } = await ctx.db.query('notes', {});
    return { count: rows.length, who: ctx.auth.userId };
  },
  async countOther(ctx: ServerContext) {
    return (await ctx.db.query('other', {})).rows.length;
  },
  async failingWrite(ctx: ServerContext, fail: boolean) {
    await ctx.db.transaction(async (tx) => {
      await tx.insert('notes', { body: 'rolled back' });
      if (fail) throw new Error('no');
    });
    return 'ok';
  },
  async readAndWrite(ctx: ServerContext) {
    await ctx.db.insert('other', { n: 1 });
    return (await ctx.db.query('other', {})).rows.length;
  },
  now() {
    return 'no table';
  },
};

const FEATURE = 'feature-live';
let client: SqlClient;
let runtime: FeatureRuntime;
let host: Host;
let server: ServerType;
let base: string;

beforeAll(async () => {
  client = await openPglite(null);
  runtime = featureRuntime(
    { id: FEATURE, serverFunctions: { module: 'server-functions.js', exports: Object.keys(fns) } },
    {
      modules: () => [{ file: 'src/api.server.ts', exportNames: Object.keys(fns), load: () => fns }],
      schema: async () => ({ namespace: { default: schema }, file: 'server/schema.ts' }),
    },
    { database: client },
  );
  await runtime.load();
  const other = featureRuntime(
    { id: 'feature-other', serverFunctions: { module: 'server-functions.js', exports: ['now'] } },
    { modules: () => [{ file: 'src/api.server.ts', exportNames: ['now'], load: () => fns }] },
  );
  await other.load();
  host = createHost([runtime.feature, other.feature], {
    logCall: null,
    dev: true,
    identify: createIdentify(parseAuthConfig(undefined), { dev: true }),
  });
  server = serve({ fetch: host.app.fetch, port: 0, hostname: '127.0.0.1' });
  attachLiveSockets(server, host.app.fetch);
  await new Promise((resolve) => server.once('listening', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await host?.live.shutdown();
  await new Promise((resolve) => server?.close(resolve));
  await client?.close();
});

const pages: Page[] = [];
afterEach(() => {
  for (const page of pages.splice(0)) page.close();
});

/** A browser page of one user: its push stream, and calls that subscribe on it. */
interface Page {
  connection: string;
  pushes: Record<string, unknown>[];
  call(fn: string, args?: unknown[], sub?: string): Promise<{ status: number; body: unknown; live: string | null }>;
  close(): void;
}

function identityHeaders(user: { sub?: string; tenant?: string }): Record<string, string> {
  if (!user.sub) return {};
  return { 'x-favn-dev-identity': JSON.stringify({ sub: user.sub, tenant_id: user.tenant }) };
}

async function openPage(user: { sub?: string; tenant?: string } = {}, featureId = FEATURE): Promise<Page> {
  const headers = identityHeaders(user);
  const stream = await openLiveStream(`${base}/_live/${featureId}`, headers);
  const { pushes, connection } = stream;
  const page: Page = {
    connection,
    pushes,
    async call(fn, args = [], sub) {
      const res = await fetch(`${base}/rpc/${FEATURE}/${fn}`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...headers,
          ...(sub ? { 'x-favn-live': `${connection}.${sub}` } : {}),
        },
        body: JSON.stringify({ args }),
      });
      return { status: res.status, body: await res.json(), live: res.headers.get('x-favn-live') };
    },
    close: stream.close,
  };
  pages.push(page);
  return page;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('live queries on one host', () => {
  it('pushes the new result of a queryRows to every subscriber after a write by anyone', async () => {
    const ann = await openPage({ sub: 'ann', tenant: 't1' });
    const bob = await openPage({ sub: 'bob', tenant: 't1' });
    const first = await ann.call('listNotes', [{}], 'a1');
    expect(first.live).toBe('on');
    expect(first.body).toEqual({ rows: [], nextCursor: null });
    expect((await bob.call('listNotes', [{}], 'b1')).live).toBe('on');
    expect((await bob.call('addNote', [{ body: 'hello' }])).status).toBe(200);
    await expect.poll(() => dataOf(ann, 'a1').length).toBe(1);
    await expect.poll(() => dataOf(bob, 'b1').length).toBe(1);
    const pushed = dataOf(ann, 'a1')[0] as { rows: { body: string }[] };
    expect(pushed.rows.map((r) => r.body)).toEqual(['hello']);
  });

  it("re-runs a plain function's ctx.db reads, with the subscriber's own identity", async () => {
    const ann = await openPage({ sub: 'ann', tenant: 't2' });
    const first = await ann.call('countNotes', [], 'c');
    expect(first.live).toBe('on');
    await ann.call('addNote', [{ body: 'x' }]);
    await expect.poll(() => dataOf(ann, 'c').at(-1)).toMatchObject({ who: 'ann' });
    expect((dataOf(ann, 'c').at(-1) as { count: number }).count).toBe((first.body as { count: number }).count + 1);
  });

  it("does not tell another tenant's subscribers, nor re-run for a table the query did not read", async () => {
    const t3 = await openPage({ sub: 'cat', tenant: 't3' });
    const t4 = await openPage({ sub: 'dan', tenant: 't4' });
    await t3.call('listNotes', [{}], 'n');
    await t4.call('listNotes', [{}], 'n');
    await t4.call('countOther', [], 'o');
    await t3.call('addNote', [{ body: 'only t3' }]);
    await expect.poll(() => dataOf(t3, 'n').length).toBe(1);
    await t3.call('addOther', [{ n: 1 }]);
    await sleep(300);
    expect(dataOf(t4, 'n')).toEqual([]);
    // addOther was t3's write: t4's countOther is not told either.
    expect(dataOf(t4, 'o')).toEqual([]);
    await t4.call('addOther', [{ n: 2 }]);
    await expect.poll(() => dataOf(t4, 'o').length).toBe(1);
  });

  it('notifies nobody of a rolled-back write', async () => {
    const page = await openPage({ sub: 'eve', tenant: 't5' });
    await page.call('countNotes', [], 'c');
    expect((await page.call('failingWrite', [true])).status).toBe(500);
    await sleep(300);
    expect(page.pushes).toEqual([]);
    expect((await page.call('failingWrite', [false])).status).toBe(200);
    await expect.poll(() => dataOf(page, 'c').length).toBe(1);
  });

  it('coalesces a burst of writes into a few re-runs, and pushes only changed results', async () => {
    const page = await openPage({ sub: 'fay', tenant: 't6' });
    await page.call('listNotes', [{ limit: 200 }], 'l');
    await Promise.all(Array.from({ length: 100 }, (_, i) => page.call('addNote', [{ body: `n${i}` }])));
    await expect.poll(() => (dataOf(page, 'l').at(-1) as { rows: unknown[] } | undefined)?.rows.length).toBe(100);
    expect(dataOf(page, 'l').length).toBeLessThan(30);
  });

  it('answers once, saying why, for calls that cannot stay live', async () => {
    const page = await openPage({ sub: 'gus', tenant: 't7' });
    expect((await page.call('addNote', [{ body: 'w' }], 'w')).live).toMatch(/^off; a insertRow is not a query/);
    expect((await page.call('readAndWrite', [], 'rw')).live).toBe('off; the function wrote data');
    expect((await page.call('now', [], 'nt')).live).toBe('off; the function read no table');
    expect((await page.call('listNotes', [{}], 'bad id!')).live).toBe('off; malformed subscription header');
    const res = await fetch(`${base}/rpc/${FEATURE}/listNotes`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...identityHeaders({ sub: 'gus', tenant: 't7' }),
        'x-favn-live': 'nosuchconnection.s1',
      },
      body: '{"args":[{}]}',
    });
    expect([res.status, res.headers.get('x-favn-live')]).toEqual([200, 'off; unknown connection']);
  });

  it("refuses to add subscriptions to another caller's connection or another feature's", async () => {
    const victim = await openPage({ sub: 'vic', tenant: 't8' });
    const intruder = await fetch(`${base}/rpc/${FEATURE}/listNotes`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...identityHeaders({ sub: 'mal', tenant: 't8' }),
        'x-favn-live': `${victim.connection}.s1`,
      },
      body: '{"args":[{}]}',
    });
    expect(intruder.headers.get('x-favn-live')).toBe('off; the connection is of another caller');
    const otherFeature = await openPage({ sub: 'vic', tenant: 't8' }, 'feature-other');
    const crossed = await fetch(`${base}/rpc/${FEATURE}/listNotes`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...identityHeaders({ sub: 'vic', tenant: 't8' }),
        'x-favn-live': `${otherFeature.connection}.s1`,
      },
      body: '{"args":[{}]}',
    });
    expect(crossed.headers.get('x-favn-live')).toBe('off; the connection is of another feature');
    await victim.call('addNote', [{ body: 'secret' }]);
    await sleep(200);
    expect(victim.pushes).toEqual([]);
    expect(otherFeature.pushes).toEqual([]);
  });

  it('frees every subscription when the page closes, and on unsubscribe', async () => {
    // The pages of earlier tests are closed: the host has let go of them.
    await expect.poll(() => host.live.stats()).toEqual({ connections: 0, subscriptions: 0, groups: 0 });
    const before = host.live.stats();
    const page = await openPage({ sub: 'hal', tenant: 't9' });
    await page.call('listNotes', [{}], 'a');
    await page.call('countNotes', [], 'b');
    expect(host.live.stats().subscriptions).toBe(before.subscriptions + 2);
    const res = await fetch(`${base}/_live/${FEATURE}/unsubscribe`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...identityHeaders({ sub: 'hal', tenant: 't9' }) },
      body: JSON.stringify({ connection: page.connection, subs: ['a'] }),
    });
    expect(res.status).toBe(204);
    expect(host.live.stats().subscriptions).toBe(before.subscriptions + 1);
    page.close();
    await expect.poll(() => host.live.stats()).toEqual(before);
  });

  it('keeps the settings document live: a save shows in every page of the installation', async () => {
    const one = await openPage({ sub: 'ida', tenant: 't10' });
    const two = await openPage({ sub: 'jon', tenant: 't10' });
    const read = await fetch(`${base}/_storage/${FEATURE}`, {
      headers: { ...identityHeaders({ sub: 'jon', tenant: 't10' }), 'x-favn-live': `${two.connection}.doc` },
    });
    expect(read.headers.get('x-favn-live')).toBe('on');
    const save = await fetch(`${base}/_storage/${FEATURE}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', ...identityHeaders({ sub: 'ida', tenant: 't10' }) },
      body: JSON.stringify({ theme: 'dark' }),
    });
    expect(save.status).toBe(200);
    await expect.poll(() => dataOf(two, 'doc')).toEqual([{ theme: 'dark' }]);
    expect(one.pushes).toEqual([]);
  });

  it('limits subscriptions per connection', async () => {
    const page = await openPage({ sub: 'kim', tenant: 't11' });
    const max = host.live.limits.maxSubscriptionsPerConnection;
    for (let i = 0; i < max; i++) expect((await page.call('countOther', [], `s${i}`)).live).toBe('on');
    expect((await page.call('countOther', [], 'one-more')).live).toBe(
      `off; the connection holds its most subscriptions (${max})`,
    );
    // Subscribing again under a held id replaces it rather than counting twice.
    expect((await page.call('countOther', [], 's0')).live).toBe('on');
  });

  it("refuses a stream to another site's page (EventSource or socket carrying this host's cookies)", async () => {
    const res = await fetch(`${base}/_live/${FEATURE}`, {
      headers: { 'sec-fetch-site': 'cross-site', origin: 'https://evil.example' },
    });
    expect(res.status).toBe(403);
    expect(((await res.json()) as { error: string }).error).toMatch(/cross-site request refused/);
  });
});

describe('live queries over a WebSocket (what browsers use)', () => {
  /** Opens the socket, sends the page's headers, and collects what the host says. */
  async function openSocket(headers: Record<string, string> | string) {
    const ws = new WebSocket(`${base.replace('http', 'ws')}/_live/${FEATURE}`);
    const messages: string[] = [];
    const closed = new Promise<number>((resolve) => ws.addEventListener('close', (e) => resolve(e.code)));
    ws.addEventListener('message', (e) => messages.push(String(e.data)));
    await new Promise((resolve) => ws.addEventListener('open', resolve));
    ws.send(typeof headers === 'string' ? headers : JSON.stringify({ headers }));
    return { ws, messages, closed };
  }

  it('carries the same stream: a subscribing call on its connection gets pushes', async () => {
    const who = identityHeaders({ sub: 'ws-ann', tenant: 'w1' });
    const socket = await openSocket(who);
    await expect.poll(() => socket.messages.join('')).toMatch(/event: hello/);
    expect(JSON.parse(socket.messages[0]!)).toEqual({ status: 200 });
    const connection = /"connection":"([^"]+)"/.exec(socket.messages.join(''))![1]!;
    const subscribe = await fetch(`${base}/rpc/${FEATURE}/listNotes`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...who, 'x-favn-live': `${connection}.w` },
      body: '{"args":[{}]}',
    });
    expect(subscribe.headers.get('x-favn-live')).toBe('on');
    await fetch(`${base}/rpc/${FEATURE}/addNote`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...who },
      body: '{"args":[{"body":"over the socket"}]}',
    });
    await expect
      .poll(() => socket.messages.join(''))
      .toMatch(/"sub":"w","data":\{"rows":\[\{[^}]*"body":"over the socket"/);
    const before = host.live.stats().connections;
    socket.ws.close();
    await expect.poll(() => host.live.stats().connections).toBe(before - 1);
  });

  it('answers the status of a refused stream, and closes a socket that sends no headers first', async () => {
    const bad = await openSocket({ 'x-favn-dev-identity': 'not json' });
    expect(await bad.closed).toBe(1000);
    expect(JSON.parse(bad.messages[0]!)).toMatchObject({ status: 401 });
    const silent = await openSocket('hello');
    expect(await silent.closed).toBe(1008);
    expect(silent.messages).toEqual([]);
  });

  it("is the browser client's transport: subscribe() gets the result, then each change, and says it is live", async () => {
    const { configureRpc, createServerFunction, subscribe } = await import('../../runtime/client.js');
    configureRpc({ baseUrl: base, headers: identityHeaders({ sub: 'ws-bob', tenant: 'w2' }) });
    const listNotes = createServerFunction(FEATURE, 'listNotes');
    const addNote = createServerFunction(FEATURE, 'addNote');
    const seen: unknown[] = [];
    const statuses: string[] = [];
    const stop = subscribe(listNotes, [{}], (data) => seen.push(data), undefined, {
      onStatus: (s) => statuses.push(s),
    });
    await expect.poll(() => statuses.at(-1)).toBe('live');
    await addNote({ body: 'pushed to the client' });
    await expect
      .poll(() => (seen.at(-1) as { rows: { body: string }[] }).rows.map((r) => r.body))
      .toEqual(['pushed to the client']);
    expect(statuses).toEqual(['connecting', 'live']);
    stop();
    await expect.poll(() => host.live.stats().subscriptions).toBe(0);
  });
});
