// Live queries under attack, through real parts: hosts on loopback ports, PGlite, server-sent events
// read over raw TCP and fetch, WebSockets from the `ws` client. Each test asserts the safe behaviour.
import { connect, type AddressInfo, type Socket } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import { SignJWT } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket as WsClient } from 'ws';
import { insertRow, queryRows } from '../../runtime/declarative.js';
import { defineSchema, defineTable } from '../../runtime/schema.js';
import type { ServerContext } from '../../runtime/server.js';
import { v } from '../../runtime/validators.js';
import { parseAuthConfig } from '../auth/auth-config.js';
import { createIdentify } from '../auth/create-identify.js';
import { openPglite } from '../data/pglite-client.js';
import type { SqlClient } from '../data/sql-client.js';
import { featureRuntime } from '../host/__fixtures__/contract-parts.js';
import { createHost, type Host } from '../host/host.js';
import type { HostOptions } from '../host/host-state.js';
import type { HostedFeature } from '../feature/hosted-feature.js';
import { attachLiveSockets } from '../host/live-socket.js';
import { dataOf, openLiveStream, type LiveStream } from './__fixtures__/live-stream.js';

const schema = defineSchema(
  {
    notes: defineTable({ body: v.string(), tenant: v.optional(v.string()) }),
    gated: defineTable({ n: v.number() }),
    big: defineTable({ n: v.number() }),
    amp: defineTable({ n: v.number() }),
  },
  { storage: { theme: v.optional(v.string()) } },
);

/** Holds the next run of `gatedCount` after its read, until released: a slow query, on demand. */
const hold = { armed: false, reached: () => {}, release: Promise.resolve() };
function armHold(): { reached: Promise<void>; release: () => void } {
  let release!: () => void;
  let reached!: () => void;
  const promise = new Promise<void>((resolve) => (reached = resolve));
  hold.release = new Promise<void>((resolve) => (release = resolve));
  hold.reached = reached;
  hold.armed = true;
  return { reached: promise, release };
}
let ampRuns = 0;
const BIG = 1024 * 1024;

const fns = {
  listNotes: queryRows('notes', { scope: { tenant: 'visibility.tenantId' } }),
  addNote: insertRow('notes', { scope: { tenant: 'visibility.tenantId' } }),
  addGated: insertRow('gated'),
  addBig: insertRow('big'),
  addAmp: insertRow('amp'),
  async gatedCount(ctx: ServerContext) {
    const n = (await ctx.db.query('gated', {})).rows.length;
    if (hold.armed) {
      hold.armed = false;
      hold.reached();
      await hold.release;
    }
    return n;
  },
  async big(ctx: ServerContext) {
    const n = (await ctx.db.query('big', {})).rows.length;
    return `${'x'.repeat(BIG)}${n}`;
  },
  async ampCount(ctx: ServerContext, variant: number) {
    ampRuns++;
    return { variant, n: (await ctx.db.query('amp', {})).rows.length };
  },
  async writeThenFail(ctx: ServerContext) {
    await ctx.db.transaction(async (tx) => {
      await tx.insert('gated', { n: -1 });
      throw new Error('rolled back on purpose');
    });
  },
};

const FEATURE = 'feature-attack';
const OTHER = 'feature-other';
const SECRET = 'an-hs256-secret-of-at-least-32-bytes!!';
let client: SqlClient;
let main: Running;
let limited: Running;
let devIdentify: HostOptions['identify'];
let runtime: ReturnType<typeof featureRuntime>;
let jwt: Running;

interface Running {
  host: Host;
  server: ServerType;
  base: string;
  close(): Promise<void>;
}

async function start(features: HostedFeature[], options: HostOptions): Promise<Running> {
  const host = createHost(features, { logCall: null, dev: true, ...options });
  const server = serve({ fetch: host.app.fetch, port: 0, hostname: '127.0.0.1' });
  const detach = attachLiveSockets(server, host.app.fetch);
  await new Promise((resolve) => server.once('listening', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    host,
    server,
    base,
    async close() {
      detach();
      await host.live.shutdown();
      (server as { closeAllConnections?: () => void }).closeAllConnections?.();
      await new Promise((resolve) => server.close(resolve));
    },
  } satisfies Running;
}

const rejections: unknown[] = [];
const onRejection = (reason: unknown) => rejections.push(reason);
const uncaught: unknown[] = [];
const onUncaught = (error: unknown) => uncaught.push(error);

beforeAll(async () => {
  process.on('unhandledRejection', onRejection);
  process.on('uncaughtException', onUncaught);
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
    { id: OTHER, serverFunctions: { module: 'server-functions.js', exports: Object.keys(fns) } },
    {
      modules: () => [{ file: 'src/api.server.ts', exportNames: Object.keys(fns), load: () => fns }],
      schema: async () => ({ namespace: { default: schema }, file: 'server/schema.ts' }),
    },
    { database: client },
  );
  await other.load();
  devIdentify = createIdentify(parseAuthConfig(undefined), { dev: true });
  main = await start([runtime.feature, other.feature], { identify: devIdentify });
  limited = await start([runtime.feature], {
    identify: devIdentify,
    live: { maxConnections: 3, maxSubscriptionsPerInstallation: 4 },
  });
  jwt = await start([runtime.feature], {
    identify: createIdentify(parseAuthConfig({ mode: 'jwt', hs256Secret: SECRET }), { dev: true }),
  });
});

afterAll(async () => {
  process.off('unhandledRejection', onRejection);
  process.off('uncaughtException', onUncaught);
  await main?.close();
  await limited?.close();
  await jwt?.close();
  await client?.close();
});

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function who(sub: string, tenant: string, extra: Record<string, unknown> = {}): Record<string, string> {
  return { 'x-favn-dev-identity': JSON.stringify({ sub, tenant_id: tenant, ...extra }) };
}

/** A page's push stream read as a browser reads it (fetch + server-sent events). */
type Stream = LiveStream;

async function openStream(headers: Record<string, string>, on = main, featureId = FEATURE): Promise<Stream> {
  const stream = await openLiveStream(`${on.base}/_live/${featureId}`, headers);
  cleanups.push(stream.close);
  return stream;
}

async function call(
  fn: string,
  args: unknown[],
  headers: Record<string, string>,
  live?: string,
  on = main,
  featureId = FEATURE,
): Promise<{ status: number; body: unknown; live: string | null }> {
  const res = await fetch(`${on.base}/rpc/${featureId}/${fn}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers, ...(live ? { 'x-favn-live': live } : {}) },
    body: JSON.stringify({ args }),
  });
  return { status: res.status, body: await res.json(), live: res.headers.get('x-favn-live') };
}

async function unsubscribe(connection: unknown, subs: unknown, headers: Record<string, string>, on = main) {
  const res = await fetch(`${on.base}/_live/${FEATURE}/unsubscribe`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ connection, subs }),
  });
  return res.status;
}

/** Whether the host still knows `connection` for this caller: a live read of the settings document on it. */
async function connectionAlive(connection: string, headers: Record<string, string>, on = main): Promise<boolean> {
  const res = await fetch(`${on.base}/_storage/${FEATURE}`, {
    headers: { ...headers, 'x-favn-live': `${connection}.probe` },
  });
  await res.arrayBuffer();
  return res.headers.get('x-favn-live') === 'on';
}

/** A WebSocket of the `ws` client (it can send any first message, set any upgrade header, and stop reading). */
async function openSocket(first: string | Buffer | null, options: { headers?: Record<string, string> } = {}) {
  const ws = new WsClient(`${main.base.replace('http', 'ws')}/_live/${FEATURE}`, { headers: options.headers });
  const messages: string[] = [];
  const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
  ws.on('message', (data) => messages.push(String(data)));
  ws.on('error', () => {});
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('unexpected-response', () => reject(new Error('the upgrade was refused')));
  });
  if (first !== null) ws.send(first);
  cleanups.push(() => ws.terminate());
  const connection = () => /"connection":"([^"]+)"/.exec(messages.join(''))?.[1];
  return { ws, messages, closed, connection };
}

/** Resolves with the close code, or 'open' when the socket is still open after `ms`. */
function closedWithin(closed: Promise<number>, ms: number): Promise<number | 'open'> {
  return Promise.race([closed, sleep(ms).then(() => 'open' as const)]);
}

describe("another caller's data never reaches you", () => {
  it('gives connection ids that are long, random and unique, and refuses unknown ones', async () => {
    const streams = await Promise.all(Array.from({ length: 20 }, () => openStream(who('ann', 'a1'))));
    const ids = streams.map((s) => s.connection);
    expect(new Set(ids).size).toBe(20);
    for (const id of ids) expect(id).toMatch(/^[A-Za-z0-9_-]{24}$/);
    // A guess one character off a real id is unknown.
    const real = ids[0]!;
    const guess = `${real.slice(0, -1)}${real.endsWith('A') ? 'B' : 'A'}`;
    expect((await call('listNotes', [{}], who('ann', 'a1'), `${guess}.s`)).live).toBe('off; unknown connection');
  });

  it("refuses a subscription on another user's, tenant's or feature's connection, and pushes nothing there", async () => {
    const victim = await openStream(who('vic', 'v1'));
    const otherFeature = await openStream(who('vic', 'v1'), main, OTHER);
    const attempts = [
      [who('mal', 'v1'), FEATURE, victim.connection, 'listNotes'],
      [who('vic', 'v2'), FEATURE, victim.connection, 'listNotes'],
      // Anonymous: no tenant, so a function not scoped by tenant.
      [{}, FEATURE, victim.connection, 'gatedCount'],
      [who('vic', 'v1'), OTHER, victim.connection, 'listNotes'],
      [who('vic', 'v1'), FEATURE, otherFeature.connection, 'listNotes'],
    ] as const;
    for (const [headers, featureId, connection, fn] of attempts) {
      const answer = await call(fn, fn === 'listNotes' ? [{}] : [], headers, `${connection}.x`, main, featureId);
      expect(answer.live).toMatch(/^off; the connection is of another (caller|feature)$/);
    }
    const storage = await fetch(`${main.base}/_storage/${FEATURE}`, {
      headers: { ...who('mal', 'v1'), 'x-favn-live': `${victim.connection}.doc` },
    });
    expect(storage.headers.get('x-favn-live')).toBe('off; the connection is of another caller');
    await call('addNote', [{ body: 'v1 secret' }], who('vic', 'v1'));
    await call('addNote', [{ body: 'v2 secret' }], who('vic', 'v2'));
    await sleep(300);
    expect(victim.pushes).toEqual([]);
    expect(otherFeature.pushes).toEqual([]);
  });

  it("cannot end another caller's subscriptions; refuses huge or malformed unsubscribe bodies", async () => {
    const victim = await openStream(who('uvi', 'u1'));
    expect((await call('listNotes', [{}], who('uvi', 'u1'), `${victim.connection}.s`)).live).toBe('on');
    const before = main.host.live.stats().subscriptions;
    expect(await unsubscribe(victim.connection, ['s'], who('umal', 'u1'))).toBe(204);
    expect(await unsubscribe(victim.connection, ['s'], who('uvi', 'u2'))).toBe(204);
    expect(await unsubscribe(victim.connection, ['s'], {})).toBe(204);
    expect(main.host.live.stats().subscriptions).toBe(before);
    for (const [connection, subs] of [
      [victim.connection, 's'],
      [victim.connection, [1]],
      [null, ['s']],
      [victim.connection, [{ toString: 's' }]],
    ]) {
      expect(await unsubscribe(connection, subs, who('uvi', 'u1'))).toBe(400);
    }
    const huge = await fetch(`${main.base}/_live/${FEATURE}/unsubscribe`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...who('uvi', 'u1') },
      body: JSON.stringify({ connection: victim.connection, subs: Array.from({ length: 20_000 }, (_, i) => `s${i}`) }),
    });
    expect(huge.status).toBe(413);
    const deep = await fetch(`${main.base}/_live/${FEATURE}/unsubscribe`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...who('uvi', 'u1') },
      body: `{"connection":"${victim.connection}","subs":${'['.repeat(20_000)}${']'.repeat(20_000)}}`,
    });
    expect(deep.status).toBe(400);
    expect(main.host.live.stats().subscriptions).toBe(before);
    await call('addNote', [{ body: 'still live' }], who('uvi', 'u1'));
    await expect.poll(() => dataOf(victim, 's').length).toBe(1);
  });

  it('a WebSocket takes no cookie, origin, host, forwarded or fetch-metadata header from its first message', async () => {
    // The first message claims the victim's identity through a cookie: the host must not use it.
    const cookie = `favn_dev_identity=${encodeURIComponent(JSON.stringify({ sub: 'cvic', tenant_id: 'c1' }))}`;
    const spoofed = await openSocket(
      JSON.stringify({
        headers: {
          cookie,
          Cookie: cookie,
          host: 'evil.example',
          'x-forwarded-for': '10.0.0.1',
          'x-forwarded-host': 'evil.example',
          forwarded: 'for=10.0.0.1',
          'content-length': '12345',
        },
      }),
    );
    await expect.poll(() => spoofed.connection()).toBeDefined();
    expect(JSON.parse(spoofed.messages[0]!)).toEqual({ status: 200 });
    const answer = await call('listNotes', [{}], who('cvic', 'c1'), `${spoofed.connection()}.s`);
    expect(answer.live).toBe('off; the connection is of another caller');
    // Another site's page: its Origin is the socket's, and the message cannot vouch for it.
    const port = new URL(main.base).port;
    const crossSite = await openSocket(
      JSON.stringify({
        headers: { origin: `http://127.0.0.1:${port}`, 'sec-fetch-site': 'same-origin', ...who('cvic', 'c1') },
      }),
      { headers: { origin: 'https://evil.example' } },
    );
    expect(await crossSite.closed).toBe(1000);
    expect(JSON.parse(crossSite.messages[0]!)).toMatchObject({ status: 403 });
  });

  it('keeps the identity of the first message: a second message changes nothing', async () => {
    const socket = await openSocket(JSON.stringify({ headers: who('first', 'm1') }));
    await expect.poll(() => socket.connection()).toBeDefined();
    socket.ws.send(JSON.stringify({ headers: who('second', 'm1') }));
    await sleep(100);
    expect((await call('listNotes', [{}], who('second', 'm1'), `${socket.connection()}.s`)).live).toBe(
      'off; the connection is of another caller',
    );
    expect((await call('listNotes', [{}], who('first', 'm1'), `${socket.connection()}.s`)).live).toBe('on');
  });

  it('ends a subscription whose token expired instead of pushing to it', async () => {
    const exp = Math.floor(Date.now() / 1000) + 2;
    const headers = who('exp', 'e1', { exp });
    const stream = await openStream(headers);
    expect((await call('listNotes', [{}], headers, `${stream.connection}.s`)).live).toBe('on');
    await sleep(Math.max(0, exp * 1000 - Date.now()) + 300);
    await call('addNote', [{ body: 'after expiry' }], who('other', 'e1'));
    await expect.poll(() => stream.pushes.length).toBe(1);
    expect(stream.pushes[0]).toMatchObject({ sub: 's', ended: true, error: { status: 401 } });
    await call('addNote', [{ body: 'after the end' }], who('other', 'e1'));
    await sleep(300);
    expect(stream.pushes).toHaveLength(1);
  });

  it('refuses an expired JWT on the stream, the socket and the subscribing call', async () => {
    const token = await new SignJWT({ sub: 'jay', tenant_id: 'j1' })
      .setProtectedHeader({ alg: 'HS256' })
      .setExpirationTime(Math.floor(Date.now() / 1000) - 60)
      .sign(new TextEncoder().encode(SECRET));
    const authorization = `Bearer ${token}`;
    const sse = await fetch(`${jwt.base}/_live/${FEATURE}`, { headers: { authorization } });
    expect(sse.status).toBe(401);
    await sse.arrayBuffer();
    const ws = new WsClient(`${jwt.base.replace('http', 'ws')}/_live/${FEATURE}`);
    cleanups.push(() => ws.terminate());
    const messages: string[] = [];
    ws.on('message', (data) => messages.push(String(data)));
    const code = new Promise<number>((resolve) => ws.on('close', resolve));
    await new Promise((resolve) => ws.once('open', resolve));
    ws.send(JSON.stringify({ headers: { authorization } }));
    expect(await code).toBe(1000);
    expect(JSON.parse(messages[0]!)).toMatchObject({ status: 401 });
    const res = await call('listNotes', [{}], { authorization }, 'whatever.s', jwt);
    expect(res.status).toBe(401);
    expect(jwt.host.live.stats()).toEqual({ connections: 0, subscriptions: 0, groups: 0 });
  });
});

describe('the host holds bounded memory and work', () => {
  it('refuses connections past its limit (503), and frees the slot of a closed one', async () => {
    const streams = await Promise.all([0, 1, 2].map(() => openStream(who('lim', 'l1'), limited)));
    const refused = await fetch(`${limited.base}/_live/${FEATURE}`, { headers: who('lim', 'l1') });
    expect(refused.status).toBe(503);
    await refused.arrayBuffer();
    streams[0]!.close();
    await expect.poll(() => limited.host.live.stats().connections).toBe(2);
    await openStream(who('lim', 'l1'), limited);
  });

  it('limits subscriptions per installation across connections, whatever the sub ids', async () => {
    await expect.poll(() => limited.host.live.stats().connections).toBe(0);
    const one = await openStream(who('ins', 'i1'), limited);
    const two = await openStream(who('ins2', 'i1'), limited);
    const answers: (string | null)[] = [];
    for (let i = 0; i < 3; i++)
      answers.push(
        (await call('listNotes', [{ limit: i + 1 }], who('ins', 'i1'), `${one.connection}.a${i}`, limited)).live,
      );
    for (let i = 0; i < 3; i++)
      answers.push(
        (await call('listNotes', [{ limit: i + 1 }], who('ins2', 'i1'), `${two.connection}.b${i}`, limited)).live,
      );
    expect(answers).toEqual([
      'on',
      'on',
      'on',
      'on',
      'off; the installation holds its most subscriptions (4)',
      'off; the installation holds its most subscriptions (4)',
    ]);
    // Another tenant has its own budget.
    const three = await openStream(who('ins3', 'i2'), limited);
    expect((await call('listNotes', [{}], who('ins3', 'i2'), `${three.connection}.c`, limited)).live).toBe('on');
    expect(limited.host.live.stats().subscriptions).toBe(5);
  });

  it('limits the distinct queries an installation keeps live; subscribing again to one of them is no new one', async () => {
    const few = await start([runtime.feature], { identify: devIdentify, live: { maxGroupsPerInstallation: 3 } });
    try {
      const page = await openStream(who('grp', 'g1'), few);
      const live = async (limit: number, sub: string) =>
        (await call('listNotes', [{ limit }], who('grp', 'g1'), `${page.connection}.${sub}`, few)).live;
      expect([await live(1, 'a'), await live(2, 'b'), await live(3, 'c')]).toEqual(['on', 'on', 'on']);
      expect(await live(4, 'd')).toBe('off; the installation keeps its most distinct live queries (3)');
      // The same query as one already live shares its re-run: no new group.
      expect(await live(2, 'e')).toBe('on');
      expect(few.host.live.stats()).toMatchObject({ subscriptions: 4, groups: 3 });
    } finally {
      await few.close();
    }
  });

  it('keeps no huge or deeply nested arguments live', async () => {
    const stream = await openStream(who('arg', 'g1'));
    const before = main.host.live.stats();
    const huge = await call('ampCount', ['y'.repeat(70 * 1024)], who('arg', 'g1'), `${stream.connection}.h`);
    expect(huge.live).toBe('off; the arguments are too long to keep live');
    const nested = await fetch(`${main.base}/rpc/${FEATURE}/ampCount`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...who('arg', 'g1'), 'x-favn-live': `${stream.connection}.n` },
      body: `{"args":[${'['.repeat(5000)}${']'.repeat(5000)}]}`,
    });
    expect(nested.status).toBe(400);
    await nested.arrayBuffer();
    const overBody = await fetch(`${main.base}/rpc/${FEATURE}/ampCount`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...who('arg', 'g1'), 'x-favn-live': `${stream.connection}.b` },
      body: JSON.stringify({ args: ['z'.repeat(8 * 1024 * 1024)] }),
    });
    expect(overBody.status).toBe(413);
    await overBody.arrayBuffer();
    expect(main.host.live.stats()).toEqual(before);
  });

  it('runs each group at most a few times for a burst of writes (no amplification per write)', async () => {
    const stream = await openStream(who('amp', 'p1'));
    for (let i = 0; i < 40; i++) {
      expect((await call('ampCount', [i], who('amp', 'p1'), `${stream.connection}.g${i}`)).live).toBe('on');
    }
    ampRuns = 0;
    const started = performance.now();
    await Promise.all(Array.from({ length: 50 }, (_, i) => call('addAmp', [{ n: i }], who('amp', 'p1'))));
    const settled = () =>
      Array.from({ length: 40 }, (_, i) => (dataOf(stream, `g${i}`).at(-1) as { n?: number } | undefined)?.n);
    await expect.poll(settled, { timeout: 20_000 }).toEqual(Array.from({ length: 40 }, () => 50));
    // At most one run per group per 30 ms (and one more for the last write), whatever the number of writes.
    const elapsed = performance.now() - started;
    expect(ampRuns).toBeLessThanOrEqual(40 * (Math.ceil(elapsed / 30) + 2));
    expect(ampRuns).toBeLessThan(40 * 50);
  });

  it("keeps one tenant's many re-running groups from delaying another tenant's pushes", async () => {
    const flooder = who('flood', 'nf');
    const pages = await Promise.all(Array.from({ length: 8 }, () => openStream(flooder)));
    for (const [p, page] of pages.entries()) {
      await Promise.all(
        Array.from({ length: 100 }, async (_, i) => {
          const answer = await call('ampCount', [1000 + p * 100 + i], flooder, `${page.connection}.f${i}`);
          expect(answer.live).toBe('on');
        }),
      );
    }
    const victim = who('quiet', 'nq');
    const stream = await openStream(victim);
    expect((await call('listNotes', [{}], victim, `${stream.connection}.n`)).live).toBe('on');
    // Tenant nf writes; each of its writes re-runs its 800 groups.
    const runsBefore = ampRuns;
    const flood = Promise.all(Array.from({ length: 10 }, (_, i) => call('addAmp', [{ n: i }], flooder)));
    // Once its re-runs are under way (hundreds still queued), tenant nq writes.
    await expect.poll(() => ampRuns, { interval: 5 }).toBeGreaterThan(runsBefore + 40);
    await call('addNote', [{ body: 'mine' }], victim);
    const runsAtWrite = ampRuns;
    await expect.poll(() => dataOf(stream, 'n').length, { timeout: 60_000, interval: 10 }).toBe(1);
    // Installations take turns: once the quiet tenant's write has committed, its one re-run does not
    // wait behind the flooder's hundreds of queued ones (first come, first served would run them all first).
    const flooderRunsMeanwhile = ampRuns - runsAtWrite;
    await flood;
    expect(flooderRunsMeanwhile).toBeLessThan(300);
  });

  it('closes a socket that never sends its headers, sends binary, too many headers or a giant first message', async () => {
    const silent = await Promise.all(Array.from({ length: 20 }, () => openSocket(null)));
    const binary = await openSocket(Buffer.from(JSON.stringify({ headers: {} })));
    const many = await openSocket(
      JSON.stringify({ headers: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`x-h${i}`, 'v'])) }),
    );
    const giant = await openSocket(JSON.stringify({ headers: { 'x-pad': 'p'.repeat(64 * 1024) } }));
    const array = await openSocket(JSON.stringify({ headers: [['authorization', 'x']] }));
    expect(await closedWithin(binary.closed, 2000)).toBe(1008);
    expect(await closedWithin(many.closed, 2000)).toBe(1008);
    expect(await closedWithin(giant.closed, 2000)).toBe(1009);
    expect(await closedWithin(array.closed, 2000)).toBe(1008);
    const codes = await Promise.all(silent.map((s) => closedWithin(s.closed, 12_000)));
    expect(new Set(codes)).toEqual(new Set([1008]));
    await expect.poll(() => main.host.live.stats().connections).toBe(0);
  });

  it('answers a first message with header names or values a Request refuses, without an unhandled error', async () => {
    rejections.length = 0;
    const names = await openSocket(JSON.stringify({ headers: { 'bad name': 'x' } }));
    const values = await openSocket(JSON.stringify({ headers: { 'x-ok': 'line\r\nx-injected: 1' } }));
    const spaced = await openSocket(JSON.stringify({ headers: { ' cookie': 'favn_dev_identity={}' } }));
    const codes = await Promise.all([names, values, spaced].map((s) => closedWithin(s.closed, 3000)));
    // An unhandled rejection ends the host's process (Node's default).
    expect({ codes, rejections: rejections.map(String) }).toEqual({ codes: [1008, 1008, 1008], rejections: [] });
  });

  it('survives a frame the socket refuses (too long, not UTF-8) before or after the headers', async () => {
    uncaught.length = 0;
    const before = await openSocket(JSON.stringify({ headers: { 'x-pad': 'p'.repeat(20 * 1024) } }));
    const after = await openSocket(JSON.stringify({ headers: who('frame', 'f1') }));
    await expect.poll(() => after.connection()).toBeDefined();
    after.ws.send('q'.repeat(20 * 1024));
    const text = await openSocket(JSON.stringify({ headers: who('frame', 'f1') }));
    await expect.poll(() => text.connection()).toBeDefined();
    text.ws.send(Buffer.from([0xff, 0xfe, 0xfd]), { binary: false });
    const codes = await Promise.all([before, after, text].map((s) => closedWithin(s.closed, 3000)));
    expect(codes).toEqual([1009, 1009, 1007]);
    await sleep(100);
    // The host's process would exit on an error nobody listens to.
    expect(uncaught.map(String)).toEqual([]);
  });

  it('frees the connection of a socket that closes right after its headers', async () => {
    await expect.poll(() => main.host.live.stats().connections).toBe(0);
    for (let round = 0; round < 5; round++) {
      const sockets = await Promise.all(Array.from({ length: 20 }, () => openSocket(null)));
      for (const socket of sockets) {
        socket.ws.send(JSON.stringify({ headers: who('quick', 'q1') }));
        if (round % 2) socket.ws.terminate();
        else socket.ws.close();
      }
      await Promise.all(sockets.map((s) => s.closed));
    }
    await expect.poll(() => main.host.live.stats().connections, { timeout: 5000 }).toBe(0);
  });

  it('cuts off a server-sent-event stream that is not read once 16 MiB of pushes wait for it', async () => {
    const headers = who('slow', 's1');
    const { port } = new URL(main.base);
    const socket: Socket = connect(Number(port), '127.0.0.1');
    cleanups.push(() => socket.destroy());
    let text = '';
    const connection = await new Promise<string>((resolve) => {
      socket.on('data', (chunk: Buffer) => {
        text += chunk.toString('latin1');
        const id = /"connection":"([^"]+)"/.exec(text)?.[1];
        if (id) {
          socket.pause();
          resolve(id);
        }
      });
      socket.write(
        `GET /_live/${FEATURE} HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\n` +
          `x-favn-dev-identity: ${headers['x-favn-dev-identity']}\r\n\r\n`,
      );
    });
    expect((await call('big', [], headers, `${connection}.b`)).live).toBe('on');
    const pushed = await pushUntilCut(connection, headers);
    // 16 MiB held by the host, plus what the kernel buffers between the two ends of the loopback.
    expect(pushed).toBeLessThan(80);
  });

  it('cuts off a WebSocket that is not read once 16 MiB of pushes wait for it', async () => {
    const headers = who('slowws', 's2');
    const socket = await openSocket(JSON.stringify({ headers }));
    await expect.poll(() => socket.connection()).toBeDefined();
    socket.ws.pause();
    const connection = socket.connection()!;
    expect((await call('big', [], headers, `${connection}.b`)).live).toBe('on');
    const pushed = await pushUntilCut(connection, headers);
    expect(pushed).toBeLessThan(80);
  });
});

/** Writes to `big` (each write a new 1 MiB result) until the host drops the connection; how many. */
async function pushUntilCut(connection: string, headers: Record<string, string>): Promise<number> {
  for (let i = 1; i <= 120; i++) {
    await call('addBig', [{ n: i }], headers);
    await sleep(40);
    if (i % 4 === 0 && !(await connectionAlive(connection, headers))) return i;
  }
  return Infinity;
}

describe('pushes stay correct', () => {
  it('does not miss a write committed between the subscribing call and its registration', async () => {
    const headers = who('race', 'r1');
    const stream = await openStream(headers);
    const gate = armHold();
    const subscribing = call('gatedCount', [], headers, `${stream.connection}.c`);
    await gate.reached;
    // The call read the table; this write commits before its subscription is registered.
    expect((await call('addGated', [{ n: 1 }], who('writer', 'r1'))).status).toBe(200);
    gate.release();
    const answer = await subscribing;
    expect(answer.live).toBe('on');
    await expect.poll(() => dataOf(stream, 'c').at(-1)).toBe((answer.body as number) + 1);
  });

  it('pushes nothing for a rolled-back write', async () => {
    const headers = who('rb', 'r2');
    const stream = await openStream(headers);
    expect((await call('gatedCount', [], headers, `${stream.connection}.c`)).live).toBe('on');
    expect((await call('writeThenFail', [], headers)).status).toBe(500);
    await sleep(300);
    expect(stream.pushes).toEqual([]);
  });

  it('pushes nothing after unsubscribe, even from a re-run already under way', async () => {
    const headers = who('unsub', 'r3');
    const stream = await openStream(headers);
    expect((await call('gatedCount', [], headers, `${stream.connection}.c`)).live).toBe('on');
    const gate = armHold();
    await call('addGated', [{ n: 2 }], headers);
    await gate.reached;
    expect(await unsubscribe(stream.connection, ['c'], headers)).toBe(204);
    gate.release();
    await call('addGated', [{ n: 3 }], headers);
    await sleep(300);
    expect(stream.pushes).toEqual([]);
  });

  it('never pushes a subscriber a result older than the one its own call answered', async () => {
    const headers = who('order', 'r4');
    const first = await openStream(headers);
    const second = await openStream(headers);
    const start = (await call('gatedCount', [], headers, `${first.connection}.c`)).body as number;
    // A re-run reads the table, then is slow to finish.
    const gate = armHold();
    await call('addGated', [{ n: 4 }], headers);
    await gate.reached;
    await call('addGated', [{ n: 5 }], headers);
    // Meanwhile a second page subscribes to the same query and is answered the newest result.
    const joined = await call('gatedCount', [], headers, `${second.connection}.c`);
    expect(joined.live).toBe('on');
    expect(joined.body).toBe(start + 2);
    gate.release();
    await expect.poll(() => dataOf(first, 'c').at(-1)).toBe(start + 2);
    await sleep(200);
    // The slow run's older result (start + 1) must not reach the page that already shows start + 2.
    expect(dataOf(second, 'c').filter((n) => (n as number) < start + 2)).toEqual([]);
    // And the first page's pushes arrive in order.
    const seen = dataOf(first, 'c') as number[];
    expect(seen).toEqual([...seen].sort((a, b) => a - b));
    expect(new Set(seen).size).toBe(seen.length);
  });

  it("the browser client never replaces a pushed result with its call's older answer", async () => {
    const { configureRpc, createServerFunction, subscribe } = await import('../../runtime/client.js');
    const headers = who('client', 'r5');
    // A slow network for the answer of the subscribing call only: the push overtakes it.
    const slowAnswers: typeof fetch = async (input, init) => {
      const response = await fetch(input, init);
      if (new Headers(init?.headers).has('x-favn-live')) await sleep(400);
      return response;
    };
    configureRpc({ baseUrl: main.base, headers, fetch: slowAnswers });
    const gatedCount = createServerFunction(FEATURE, 'gatedCount');
    const seen: unknown[] = [];
    const statuses: string[] = [];
    const gate = armHold();
    const stop = subscribe(gatedCount, [], (data) => seen.push(data), undefined, { onStatus: (s) => statuses.push(s) });
    cleanups.push(stop);
    await gate.reached;
    const before = (await call('gatedCount', [], headers)).body as number;
    expect((await call('addGated', [{ n: 6 }], headers)).status).toBe(200);
    gate.release();
    await expect.poll(() => statuses.at(-1)).toBe('live');
    await sleep(600);
    expect(seen.at(-1), `results in the order the page saw them: ${JSON.stringify(seen)}`).toBe(before + 1);
  });
});
