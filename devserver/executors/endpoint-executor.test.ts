import type { AddressInfo } from 'node:net';
import net from 'node:net';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ServerContext } from '../../runtime/context.js';
import { RequestError } from '../../runtime/request-error.js';
import { EndpointExecutor, type EndpointOptions } from './endpoint-executor.js';
import { RawJson, type CallRequest } from './executor.js';

const LOOPBACK = '127.0.0.1';
/** The largest upstream body the executor reads (10 MiB). */
const MAX_BODY = 10 * 1024 * 1024;
/** Short, so the timeout tests are quick; silent upstreams stay silent far longer. */
const TIMEOUT_MS = 300;

interface Seen {
  path: string;
  search: string;
  body: string;
  headers: Record<string, string>;
}

/** What the upstream is told to answer for a function name. */
const ANSWERS: Record<string, () => Response> = {
  getData: () => json('{"items":["a","b"],  "spacing":"kept"}', 200),
  created: () => json('{"id":7}', 201),
  forbidden: () => json('{"error":"Forbidden by the backend","code":"E_POLICY"}', 403),
  invalid: () => json('{"error":"title is required"}', 422),
  broken: () => json('{"error":"backend exploded"}', 500),
  overloaded: () => json('{"error":"try later"}', 503),
  html: () => new Response('<html>oops</html>', { status: 200, headers: { 'content-type': 'text/html' } }),
  empty: () => new Response('', { status: 200 }),
  htmlError: () => new Response('<h1>Bad Gateway</h1>', { status: 502, headers: { 'content-type': 'text/html' } }),
  redirect: () =>
    new Response('{"moved":true}', {
      status: 302,
      headers: { location: '/elsewhere', 'content-type': 'application/json' },
    }),
  notModified: () => new Response(null, { status: 304 }),
  unregistered2xx: () => json('{}', 299),
  unregistered4xx: () => json('{}', 450),
  atLimit: () => json(`"${'x'.repeat(MAX_BODY - 2)}"`, 200),
  overLimit: () => json(`"${'x'.repeat(MAX_BODY - 1)}"`, 200),
};

function json(body: string, status: number): Response {
  return new Response(body, { status, headers: { 'content-type': 'application/json' } });
}

/** A feature team's backend on loopback: records each request, counts its TCP connections. */
async function startUpstream() {
  const seen: Seen[] = [];
  let release!: () => void;
  const silence = new Promise<void>((resolve) => (release = resolve));
  const app = new Hono();
  app.post('*', async (c) => {
    const body = await c.req.text();
    const url = new URL(c.req.raw.url);
    const path = url.pathname;
    seen.push({ path, search: url.search, body, headers: Object.fromEntries(c.req.raw.headers) });
    const fn = decodeURIComponent(path.split('/').pop()!);
    if (fn === 'silent') {
      await silence;
      return c.json({ late: true });
    }
    return (ANSWERS[fn] ?? (() => json('{"echo":true}', 200)))();
  });
  const server = serve({ fetch: app.fetch, port: 0, hostname: LOOPBACK });
  await new Promise<void>((resolve) => server.once('listening', resolve));
  const connections = { opened: 0, open: 0 };
  server.on('connection', (socket: net.Socket) => {
    connections.opened++;
    connections.open++;
    socket.once('close', () => connections.open--);
  });
  const { port } = server.address() as AddressInfo;
  const close = () =>
    new Promise<void>((resolve) => {
      release();
      server.close(() => resolve());
      (server as import('node:http').Server).closeAllConnections();
    });
  return { url: `http://${LOOPBACK}:${port}`, seen, connections, close };
}

/** A loopback server that answers every request with `reply` written on the raw socket. */
async function startRawUpstream(reply: (socket: net.Socket) => void) {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.once('data', () => reply(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, LOOPBACK, resolve));
  const { port } = server.address() as AddressInfo;
  const close = () =>
    new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy();
      server.close(() => resolve());
    });
  return { url: `http://${LOOPBACK}:${port}`, close };
}

/** A call's context as the host builds it; `db`, `secrets` and `signal` must never be forwarded. */
function contextOf(overrides: Partial<ServerContext> = {}): ServerContext {
  return {
    requestId: 'req-7f3a',
    featureId: 'feature-reports',
    userRoles: ['editor', 'viewer'],
    claims: { sub: 'user-1', name: 'Zoë 🚀', tenant_id: 't1' },
    visibility: { featureToggles: ['beta'], tenantId: 't1' },
    auth: { userId: 'user-1' },
    db: {} as ServerContext['db'],
    secrets: { API_KEY: 'sk-live-never-forwarded' },
    signal: new AbortController().signal,
    ...overrides,
  };
}

/** The incoming request's headers, as the route hands them to the executor. */
function incoming(headers: Record<string, string>): CallRequest {
  return { header: (name) => headers[name.toLowerCase()] };
}

/** Rejects when `promise` has not settled within `ms`: a call must never hang. */
function within<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the call did not settle within ${ms} ms`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/** The `RequestError` a call fails with. */
async function failure(promise: Promise<unknown>, ms = 5000): Promise<RequestError> {
  const error = await within(promise, ms).then(
    (value) => {
      throw new Error(`the call succeeded with ${JSON.stringify(value)}`);
    },
    (error: unknown) => error,
  );
  expect(error).toBeInstanceOf(RequestError);
  return error as RequestError;
}

describe('EndpointExecutor', () => {
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
  const executors: EndpointExecutor[] = [];
  const executor = (options: Partial<EndpointOptions> = {}) => {
    const created = new EndpointExecutor({
      endpoint: `${upstream.url}/feature/rpc`,
      timeoutMs: TIMEOUT_MS,
      ...options,
    });
    executors.push(created);
    return created;
  };
  const call = (fn: string, args: unknown[] = [], options: Partial<EndpointOptions> = {}) =>
    executor(options).invocation(fn)(contextOf(), args) as Promise<RawJson>;

  beforeAll(async () => {
    upstream = await startUpstream();
  });
  beforeEach(() => {
    upstream.seen.length = 0;
  });
  afterAll(async () => {
    for (const created of executors) created.close();
    await upstream?.close();
  });

  describe('the forwarded request', () => {
    const AUTH = { authorization: 'Bearer abc.def.ghi', 'x-auth-request-access-token': 'tok-1', cookie: 'session=s1' };
    const OTHERS = {
      'x-api-key': 'client-key',
      'x-forwarded-for': '203.0.113.9',
      'accept-language': 'de',
      host: 'host.example',
      'content-type': 'text/plain',
      'x-request-id': 'client-chosen-id',
      'x-cdn-loader-feature-id': 'feature-spoofed',
    };

    it('POSTs {endpoint}/{fnName} with the args, the context and the x-cdn-loader headers', async () => {
      const ctx = contextOf();
      const result = await executor().invocation('getData')(
        ctx,
        [1, 'two', { three: 3 }],
        incoming({ ...AUTH, ...OTHERS }),
      );
      expect(result).toEqual(new RawJson('{"items":["a","b"],  "spacing":"kept"}', 200));
      expect(upstream.seen).toHaveLength(1);
      const { path, body, headers } = upstream.seen[0]!;
      expect(path).toBe('/feature/rpc/getData');
      const context = {
        requestId: 'req-7f3a',
        featureId: 'feature-reports',
        userRoles: ['editor', 'viewer'],
        claims: { sub: 'user-1', name: 'Zoë 🚀', tenant_id: 't1' },
        visibility: { featureToggles: ['beta'], tenantId: 't1' },
        auth: { userId: 'user-1' },
      };
      expect(JSON.parse(body)).toEqual({ args: [1, 'two', { three: 3 }], context });
      expect(headers['content-type']).toBe('application/json');
      expect(Number(headers['content-length'])).toBe(Buffer.byteLength(body));
      expect(headers['x-request-id']).toBe('req-7f3a');
      expect(headers['x-cdn-loader-feature-id']).toBe('feature-reports');
      expect(headers['x-cdn-loader-function']).toBe('getData');
      expect(JSON.parse(Buffer.from(headers['x-cdn-loader-context']!, 'base64url').toString('utf8'))).toEqual(context);
      expect(headers['x-cdn-loader-context']).toMatch(/^[A-Za-z0-9_-]+$/);
      expect(body).not.toContain('sk-live-never-forwarded');
    });

    it("forwards the caller's auth headers and no other header of the incoming request", async () => {
      await executor().invocation('getData')(contextOf(), [], incoming({ ...AUTH, ...OTHERS }));
      const { headers } = upstream.seen[0]!;
      expect(Object.keys(headers).sort()).toEqual(
        [
          'authorization',
          'connection',
          'content-length',
          'content-type',
          'cookie',
          'host',
          'x-auth-request-access-token',
          'x-cdn-loader-context',
          'x-cdn-loader-feature-id',
          'x-cdn-loader-function',
          'x-request-id',
        ].sort(),
      );
      expect(headers).toMatchObject(AUTH);
      expect(headers.host).toBe(new URL(upstream.url).host);
    });

    it('forwards no auth header with forwardAuthHeaders: false', async () => {
      await executor({ forwardAuthHeaders: false }).invocation('getData')(
        contextOf(),
        [],
        incoming({ ...AUTH, ...OTHERS }),
      );
      const { headers } = upstream.seen[0]!;
      for (const name of Object.keys(AUTH)) expect(headers, name).not.toHaveProperty(name);
      expect(headers['x-cdn-loader-function']).toBe('getData');
    });

    it('forwards only the auth headers the caller sent, and none without an incoming request', async () => {
      await executor().invocation('getData')(contextOf(), [], incoming({ cookie: 'session=s2' }));
      await executor().invocation('getData')(contextOf(), []);
      const [some, none] = upstream.seen;
      expect([some!.headers.cookie, some!.headers.authorization]).toEqual(['session=s2', undefined]);
      for (const name of Object.keys(AUTH)) expect(none!.headers, name).not.toHaveProperty(name);
    });

    it('URL-encodes the function name in the path; the header carries it as it is', async () => {
      await call('get$Data');
      await call('a/../b?c#d');
      expect(upstream.seen.map((s) => s.path)).toEqual(['/feature/rpc/get%24Data', '/feature/rpc/a%2F..%2Fb%3Fc%23d']);
      expect(upstream.seen.map((s) => s.headers['x-cdn-loader-function'])).toEqual(['get$Data', 'a/../b?c#d']);
    });

    it.each([
      ['a trailing slash', '/feature/rpc/', '/feature/rpc/getData'],
      ['the server root', '', '/getData'],
      ['the server root with a slash', '/', '/getData'],
    ])('joins an endpoint with %s and the name with one slash', async (_, base, path) => {
      await executor({ endpoint: `${upstream.url}${base}` }).invocation('getData')(contextOf(), []);
      expect(upstream.seen[0]!.path).toBe(path);
    });

    it('keeps non-ASCII arguments and claims intact (length counted in bytes)', async () => {
      const args = ['naïve café', '日本語', '🚀'.repeat(100)];
      await call('getData', args);
      const { body, headers } = upstream.seen[0]!;
      expect(JSON.parse(body).args).toEqual(args);
      expect(JSON.parse(body).context.claims.name).toBe('Zoë 🚀');
      expect(Number(headers['content-length'])).toBe(Buffer.byteLength(body));
    });
  });

  describe("the upstream's answer", () => {
    it('2xx JSON is the result, byte for byte, with status 200', async () => {
      expect(await call('getData')).toEqual(new RawJson('{"items":["a","b"],  "spacing":"kept"}', 200));
      expect(await call('created')).toEqual(new RawJson('{"id":7}', 200));
    });

    it.each([
      ['forbidden', 403, '{"error":"Forbidden by the backend","code":"E_POLICY"}'],
      ['invalid', 422, '{"error":"title is required"}'],
      ['broken', 500, '{"error":"backend exploded"}'],
      ['overloaded', 503, '{"error":"try later"}'],
    ])('%s: 4xx/5xx JSON passes through with its status', async (fn, status, body) => {
      expect(await call(fn)).toEqual(new RawJson(body, status));
    });

    it.each([
      ['html', 'html answered 200 with a body that is not JSON'],
      ['empty', 'empty answered 200 with a body that is not JSON'],
      ['htmlError', 'htmlError answered 502 with a body that is not JSON'],
    ])('%s: a body that is not JSON is 502', async (fn, detail) => {
      const error = await failure(call(fn));
      expect([error.status, error.message]).toEqual([502, `RPC upstream error: ${detail}`]);
    });

    it.each([
      ['redirect', 302],
      ['notModified', 304],
      ['unregistered2xx', 299],
      ['unregistered4xx', 450],
    ])('%s: status %d never reaches the client; it is 502', async (fn, status) => {
      const error = await failure(call(fn));
      expect(error.status).toBe(502);
      expect(error.message).toMatch(
        new RegExp(
          `^RPC upstream error: ${fn} answered (with status ${status}|${status} with a body that is not JSON)$`,
        ),
      );
    });

    it('a body of exactly 10 MiB is read; one byte more is 502', async () => {
      // About size, not time: a loaded machine may take longer than the short timeout to move 10 MiB.
      const patient = { timeoutMs: 30_000 };
      const atLimit = await call('atLimit', [], patient);
      expect(atLimit.json.length).toBe(MAX_BODY);
      const error = await failure(call('overLimit', [], patient));
      expect([error.status, error.message]).toEqual([
        502,
        `RPC upstream error: the response of overLimit is over ${MAX_BODY} bytes`,
      ]);
    });

    it('names a root endpoint without a doubled slash, and keeps its query string on every call', async () => {
      const closed = await startRawUpstream(() => {});
      await closed.close();
      const error = await failure(call('getData', [], { endpoint: `${closed.url}/` }));
      expect(error.message).toBe(`RPC upstream error: ${closed.url}/getData is unreachable (ECONNREFUSED)`);
      await call('getData', [], { endpoint: `${upstream.url}/feature/rpc?code=k1` });
      expect(upstream.seen.at(-1)).toMatchObject({ path: '/feature/rpc/getData', search: '?code=k1' });
    });

    it('an upstream that accepts no connection is 502 naming the URL', async () => {
      const closed = await startRawUpstream(() => {});
      await closed.close();
      const error = await failure(call('getData', [], { endpoint: `${closed.url}/feature/rpc` }));
      expect(error.status).toBe(502);
      expect(error.message).toBe(`RPC upstream error: ${closed.url}/feature/rpc/getData is unreachable (ECONNREFUSED)`);
    });

    it('an upstream that closes the connection mid-body is 502', async () => {
      const cut = await startRawUpstream((socket) => {
        socket.write('HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"a":');
        setTimeout(() => socket.destroy(), 20);
      });
      try {
        const error = await failure(call('getData', [], { endpoint: cut.url }));
        expect(error.status).toBe(502);
        expect(error.message).toMatch(/^RPC upstream error\b/);
      } finally {
        await cut.close();
      }
    });

    it('an upstream answering 101 (switching protocols) is 502, not a call that never ends', async () => {
      const upgrading = await startRawUpstream((socket) => {
        socket.write('HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n');
      });
      try {
        const error = await failure(call('getData', [], { endpoint: upgrading.url }), 10 * TIMEOUT_MS);
        expect(error.status).toBe(502);
        expect(error.message).toMatch(/^RPC upstream error\b/);
      } finally {
        await upgrading.close();
      }
    });
  });

  describe('timeouts', () => {
    it('an upstream silent past timeoutMs is 503 "RPC upstream timed out", within a few budgets', async () => {
      const started = performance.now();
      const error = await failure(call('silent'), 10 * TIMEOUT_MS);
      const elapsed = performance.now() - started;
      expect([error.status, error.message]).toEqual([503, `RPC upstream timed out after ${TIMEOUT_MS} ms`]);
      expect(elapsed).toBeGreaterThanOrEqual(TIMEOUT_MS - 20);
      expect(elapsed).toBeLessThan(5 * TIMEOUT_MS);
    });

    it('the dropped request frees its connection on the upstream', async () => {
      const open = upstream.connections.open;
      await failure(call('silent'), 10 * TIMEOUT_MS);
      await expect.poll(() => upstream.connections.open, { timeout: 2000 }).toBeLessThanOrEqual(open);
    });

    it('an upstream that sends its headers and then falls silent is 503 too', async () => {
      const stalling = await startRawUpstream((socket) => {
        socket.write('HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"a":');
      });
      try {
        const error = await failure(call('getData', [], { endpoint: stalling.url }), 10 * TIMEOUT_MS);
        expect([error.status, error.message]).toEqual([503, `RPC upstream timed out after ${TIMEOUT_MS} ms`]);
      } finally {
        await stalling.close();
      }
    });

    it('defaults to 10 s: a 300 ms pause is no timeout', async () => {
      const slow = await startRawUpstream((socket) => {
        setTimeout(
          () => socket.write('HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}'),
          TIMEOUT_MS,
        );
      });
      try {
        const created = new EndpointExecutor({ endpoint: slow.url });
        executors.push(created);
        expect(await within(created.invocation('getData')(contextOf(), []) as Promise<RawJson>, 5000)).toEqual(
          new RawJson('{}', 200),
        );
      } finally {
        await slow.close();
      }
    });
  });

  describe('connections', () => {
    it('reuses one keep-alive connection for calls in sequence', async () => {
      const opened = upstream.connections.opened;
      const shared = executor();
      for (let i = 0; i < 5; i++) {
        expect(((await shared.invocation(i % 2 ? 'getData' : 'forbidden')(contextOf(), [i])) as RawJson).status).toBe(
          i % 2 ? 200 : 403,
        );
      }
      expect(upstream.seen).toHaveLength(5);
      expect(upstream.connections.opened - opened).toBe(1);
    });

    it('answers calls in parallel, each with its own result', async () => {
      const shared = executor();
      const names = ['getData', 'forbidden', 'broken', 'created', 'invalid', 'getData'];
      const results = await Promise.all(names.map((fn) => shared.invocation(fn)(contextOf(), []) as Promise<RawJson>));
      expect(results.map((r) => r.status)).toEqual([200, 403, 500, 200, 422, 200]);
      expect(upstream.seen.map((s) => s.path).sort()).toEqual(names.map((fn) => `/feature/rpc/${fn}`).sort());
    });

    it('close() ends its connections to the upstream', async () => {
      const open = upstream.connections.open;
      const closing = new EndpointExecutor({ endpoint: `${upstream.url}/feature/rpc` });
      await closing.invocation('getData')(contextOf(), []);
      expect(upstream.connections.open).toBe(open + 1);
      closing.close();
      await expect.poll(() => upstream.connections.open, { timeout: 2000 }).toBe(open);
    });
  });
});
