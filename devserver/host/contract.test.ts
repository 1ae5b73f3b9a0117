import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertRow, queryRows } from '../../runtime/declarative.js';
import { contractText, REQUEST_ID_HEADER } from '../../runtime/protocol.js';
import { RequestError } from '../../runtime/request-error.js';
import { defineSchema, defineTable } from '../../runtime/schema.js';
import type { ServerContext } from '../../runtime/server.js';
import { v } from '../../runtime/validators.js';
import { createIdentify } from '../auth/create-identify.js';
import { now, SECRET, signHs, unsignedToken } from '../auth/__fixtures__/tokens.js';
import { openPglite } from '../data/pglite-client.js';
import type { SqlClient } from '../data/sql-client.js';
import type { FeatureRuntime } from '../feature/feature-runtime.js';
import { MemoryRateLimiter } from '../rate-limit/memory-limiter.js';
import { createHost, type HostOptions } from './host.js';
import {
  brokenModule,
  closedPort,
  expectRow,
  failure,
  featureRuntime,
  plainFeature,
  rpc,
  startUpstream,
  UUID,
  type Upstream,
} from './__fixtures__/contract-parts.js';

// Every row of the RPC contract's error table (SPEC section 4), and its success path, through the
// host's whole request pipeline with Hono's `app.request`: real features assembled by
// FeatureRuntime, real auth, rate limiter, database and, for endpoint mode, a real upstream.

const FEATURE = 'feature-contract';

/** Signals of the calls to `neverResolves`, to check they were aborted. */
const signals: AbortSignal[] = [];

const functions: Record<string, unknown> = {
  echo: (_ctx: ServerContext, ...args: unknown[]) => args,
  nothing: () => undefined,
  requestId: (ctx: ServerContext) => ctx.requestId,
  whoAmI: (ctx: ServerContext) => ({ userId: ctx.auth.userId, tenantId: ctx.visibility.tenantId }),
  forbidden: () => {
    throw Object.assign(new Error('Forbidden: not your report'), { statusCode: 403 });
  },
  forbiddenByStatus: () => {
    throw Object.assign(new Error('Forbidden: read-only workspace'), { status: 403 });
  },
  refusesTitle: () => {
    throw RequestError.of('invalidArguments', 'args[0].title: expected string, got number');
  },
  fails: () => {
    throw new Error('database exploded at db.internal:5432');
  },
  throwsString: () => {
    throw 'plain string thrown';
  },
  neverResolves: (ctx: ServerContext) => {
    signals.push(ctx.signal);
    return new Promise(() => {});
  },
};

const runtimes: FeatureRuntime[] = [];
const logged: unknown[] = [];
let database: SqlClient;
let upstream: Upstream;
let main: FeatureRuntime;

/** A host over `features` that keeps stack traces in `logged` and prints no call lines. */
function host(features: FeatureRuntime[], options: HostOptions = {}) {
  return createHost(
    features.map((f) => f.feature),
    { logCall: null, logError: (_message, error) => logged.push(error), ...options },
  ).app;
}

async function track<T extends FeatureRuntime>(runtime: T | Promise<T>): Promise<T> {
  const ready = await runtime;
  runtimes.push(ready);
  return ready;
}

beforeAll(async () => {
  main = await track(
    plainFeature(FEATURE, functions, {
      manifest: { version: '1.2.3' },
      declared: [...Object.keys(functions), 'declaredOnly'],
    }),
  );
  database = await openPglite(null);
  upstream = await startUpstream();
});

afterAll(async () => {
  for (const runtime of runtimes) await runtime.close();
  await database?.close();
  await upstream?.close();
});

describe('success', () => {
  it('200 with the JSON the function returned, ctx first and the client args after', async () => {
    const res = await rpc(host([main]), FEATURE, 'echo', [1, 'two', { three: [3] }]);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await res.json()).toEqual([1, 'two', { three: [3] }]);
    expect(res.headers.get(REQUEST_ID_HEADER)).toMatch(UUID);
  });

  it('undefined becomes null', async () => {
    const res = await rpc(host([main]), FEATURE, 'nothing');
    expect([res.status, await res.text()]).toEqual([200, 'null']);
  });

  it('a fresh request id per call, the one ctx.requestId has; a short safe incoming one is kept, an unsafe one replaced', async () => {
    const app = host([main]);
    const a = await rpc(app, FEATURE, 'requestId');
    const b = await rpc(app, FEATURE, 'requestId');
    expect(await a.json()).toBe(a.headers.get(REQUEST_ID_HEADER));
    expect(a.headers.get(REQUEST_ID_HEADER)).not.toBe(b.headers.get(REQUEST_ID_HEADER));
    const kept = await rpc(app, FEATURE, 'requestId', [], { [REQUEST_ID_HEADER]: 'trace-abc_123' });
    expect([kept.headers.get(REQUEST_ID_HEADER), await kept.json()]).toEqual(['trace-abc_123', 'trace-abc_123']);
    for (const unsafe of ['bad id <script>', 'x'.repeat(65), 'a\u00e9b']) {
      const res = await rpc(app, FEATURE, 'requestId', [], { [REQUEST_ID_HEADER]: unsafe });
      expect(res.headers.get(REQUEST_ID_HEADER)).toMatch(UUID);
      expect(await res.json()).toBe(res.headers.get(REQUEST_ID_HEADER));
    }
    const failed = await failure(await rpc(app, FEATURE, 'forbidden', [], { [REQUEST_ID_HEADER]: '<script>' }));
    expect(failed.requestId).toMatch(UUID);
  });

  it('a call made while the feature is still loading waits for the load', async () => {
    let loaded = false;
    const runtime = await track(
      featureRuntime(
        { id: 'feature-loading', serverFunctions: { module: 'server-functions.js', exports: ['getData'] } },
        {
          modules: () => [
            {
              file: 'src/api.server.ts',
              exportNames: ['getData'],
              load: async () => {
                await new Promise((resolve) => setTimeout(resolve, 50));
                loaded = true;
                return { getData: () => ({ ready: true }) };
              },
            },
          ],
        },
      ),
    );
    const app = host([runtime]);
    const loading = runtime.load();
    const res = await rpc(app, 'feature-loading', 'getData');
    expect(loaded).toBe(true);
    expect([res.status, await res.json()]).toEqual([200, { ready: true }]);
    await loading;
  });
});

describe('503 while the server code is still loading', () => {
  it('a call waits for a load at most the feature timeoutMs, then answers 503', async () => {
    const runtime = await track(
      featureRuntime(
        {
          id: 'feature-hung',
          timeoutMs: 150,
          serverFunctions: { module: 'server-functions.js', exports: ['getData'] },
        },
        // A module whose top-level await has not settled yet.
        { modules: () => [{ file: 'src/api.server.ts', exportNames: ['getData'], load: () => new Promise(() => {}) }] },
      ),
    );
    const app = host([runtime]);
    void runtime.load();
    await expectRow((headers) => rpc(app, 'feature-hung', 'getData', [], headers), {
      status: 503,
      text: 'Server functions unavailable: the server code was still loading after 150 ms',
    });
  });
});

describe('400 Malformed RPC request', () => {
  it.each([
    ['body not JSON', '{not json'],
    ['body empty', ''],
    ['body an array', '[1,2]'],
    ['body a string', '"args"'],
    ['body null', 'null'],
    ['args missing', '{}'],
    ['args an object', '{"args":{"0":1}}'],
    ['args a string', '{"args":"x"}'],
    ['args null', '{"args":null}'],
  ])('%s', async (_case, body) => {
    const app = host([main]);
    await expectRow((headers) => rpc(app, FEATURE, 'echo', body, headers), 'malformed');
  });

  it('a body that is not declared as JSON', async () => {
    const app = host([main]);
    const row = await expectRow(
      (headers) => rpc(app, FEATURE, 'echo', '{"args":[]}', { 'content-type': 'text/plain', ...headers }),
      'malformed',
    );
    expect(row.error).toMatch(/Content-Type must be application\/json/);
  });

  it('arguments nested deeper than 64 levels', async () => {
    const app = host([main]);
    const nested = `${'['.repeat(65)}0${']'.repeat(65)}`;
    await expectRow((headers) => rpc(app, FEATURE, 'echo', `{"args":[${nested}]}`, headers), 'malformed');
  });
});

describe('401 Unauthorized', () => {
  const jwtHost = (required: boolean) =>
    host([main], { identify: createIdentify({ mode: 'jwt', hs256Secret: SECRET, required }, { dev: false }) });
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

  it('a missing token where auth is required', async () => {
    const app = jwtHost(true);
    await expectRow((headers) => rpc(app, FEATURE, 'whoAmI', [], headers), 'unauthorized');
  });

  it.each([
    ['not a JWT', async () => 'not-a-jwt'],
    ['signed with another secret', () => signHs({ sub: 'ann' }, 'another-secret-0123456789abcdefgh')],
    ['expired', () => signHs({ sub: 'ann', exp: now() - 60 })],
    ['unsigned (alg none)', async () => unsignedToken({ sub: 'root' })],
  ])('a token %s, whether or not auth is required', async (_case, token) => {
    const value = await token();
    for (const required of [true, false]) {
      const app = jwtHost(required);
      await expectRow((headers) => rpc(app, FEATURE, 'whoAmI', [], { ...bearer(value), ...headers }), 'unauthorized');
    }
  });

  it('comes before anything else: an anonymous caller learns no function name and sends no body', async () => {
    const app = jwtHost(true);
    await expectRow((headers) => rpc(app, FEATURE, 'unknownFn', [], headers), 'unauthorized');
    await expectRow((headers) => rpc(app, FEATURE, 'declaredOnly', [], headers), 'unauthorized');
    await expectRow((headers) => rpc(app, FEATURE, 'whoAmI', 'not json', headers), 'unauthorized');
  });

  it('a valid token is the caller; no token where auth is optional is anonymous', async () => {
    const token = await signHs({ sub: 'ann', tenant_id: 'acme' });
    const signedIn = await rpc(jwtHost(true), FEATURE, 'whoAmI', [], bearer(token));
    expect([signedIn.status, await signedIn.json()]).toEqual([200, { userId: 'ann', tenantId: 'acme' }]);
    const anonymous = await rpc(jwtHost(false), FEATURE, 'whoAmI');
    expect([anonymous.status, await anonymous.json()]).toEqual([200, { userId: null, tenantId: null }]);
  });
});

describe('403', () => {
  it.each(['unknownFn', 'constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf'])(
    'Function "%s" is not declared',
    async (name) => {
      const app = host([main]);
      await expectRow((headers) => rpc(app, FEATURE, name, [], headers), 'notDeclared', name);
    },
  );

  it('Function "x" is not exported: declared, but the module has no such own export', async () => {
    const app = host([main]);
    await expectRow((headers) => rpc(app, FEATURE, 'declaredOnly', [], headers), 'notExported', 'declaredOnly');
  });

  it.each([
    ['statusCode', 'forbidden', 'Forbidden: not your report'],
    ['status', 'forbiddenByStatus', 'Forbidden: read-only workspace'],
  ])("the function's own message when it throws with %s 403, in production too", async (_field, fn, message) => {
    const app = host([main]);
    const row = await expectRow((headers) => rpc(app, FEATURE, fn, [], headers), { status: 403, text: message });
    expect(row.error).toBe(message);
  });
});

describe('404', () => {
  it('Feature "x" not found', async () => {
    const app = host([main]);
    await expectRow((headers) => rpc(app, 'feature-nope', 'echo', [], headers), 'featureNotFound', 'feature-nope');
  });

  it.each(['/rpc', '/rpc/', `/rpc/${FEATURE}`, `/rpc/${FEATURE}/echo/`, `/rpc/${FEATURE}/echo/extra`, '/rpc//echo'])(
    'a path under /rpc the route does not match: %s',
    async (path) => {
      const app = host([main]);
      const send = (headers: Record<string, string>) =>
        app.request(path, {
          method: 'POST',
          body: '{"args":[]}',
          headers: { 'content-type': 'application/json', ...headers },
        });
      await expectRow(send, { status: 404, text: 'Not found: RPC calls go to POST /rpc/{featureId}/{fnName}' });
    },
  );
});

describe('405 for other methods on the RPC route', () => {
  it.each(['GET', 'PUT', 'DELETE'])('%s', async (method) => {
    const app = host([main]);
    const send = (headers: Record<string, string>) => app.request(`/rpc/${FEATURE}/echo`, { method, headers });
    const row = await expectRow(send, { status: 405, text: contractText('malformed') });
    expect(row.error).toMatch(/use POST/);
  });
});

describe('413 Payload too large', () => {
  it('a body over the host limit, checked before parsing', async () => {
    const app = host([main], { bodyLimit: 256 });
    const big = JSON.stringify({ args: ['x'.repeat(300)] });
    await expectRow((headers) => rpc(app, FEATURE, 'echo', big, headers), 'payloadTooLarge');
    // Not JSON either: the size is refused first.
    await expectRow((headers) => rpc(app, FEATURE, 'echo', `{${'x'.repeat(300)}`, headers), 'payloadTooLarge');
    const fits = JSON.stringify({ args: ['x'.repeat(256 - 13)] });
    expect(fits.length).toBe(256);
    expect((await rpc(app, FEATURE, 'echo', fits)).status).toBe(200);
  });

  it('a 2 MB body with the default limit of 1 MiB', async () => {
    const app = host([main]);
    const big = JSON.stringify({ args: ['x'.repeat(2 * 1024 * 1024)] });
    await expectRow((headers) => rpc(app, FEATURE, 'echo', big, headers), 'payloadTooLarge');
  });
});

describe('422 Invalid arguments', () => {
  const schema = defineSchema({ notes: defineTable({ body: v.string(), stars: v.optional(v.int()) }) });
  let notes: FeatureRuntime;

  beforeAll(async () => {
    notes = await track(
      featureRuntime(
        { id: 'feature-notes', serverFunctions: { module: 'server-functions.js', exports: ['addNote', 'listNotes'] } },
        {
          schema: async () => ({ namespace: { default: schema }, file: 'server/schema.ts' }),
          modules: () => [
            {
              file: 'src/notes.server.ts',
              exportNames: ['addNote', 'listNotes'],
              load: () => ({ addNote: insertRow('notes'), listNotes: queryRows('notes') }),
            },
          ],
        },
        { database },
      ),
    );
    await notes.load();
  });

  it.each([
    ['a value of the wrong type', [{ body: 42 }], /^Invalid arguments: args\[0\]\.body: expected string/],
    ['a missing column', [{}], /^Invalid arguments: args\[0\]\.body/],
    ['a column the client may not set', [{ body: 'x', id: 'forged' }], /^Invalid arguments: args\[0\]\.id/],
    ['no object at all', ['just text'], /^Invalid arguments: args\[0\]/],
  ])('a declarative insertRow given %s', async (_case, args, message) => {
    const app = host([notes]);
    const row = await expectRow((headers) => rpc(app, 'feature-notes', 'addNote', args, headers), 'invalidArguments');
    expect(row.error).toMatch(message);
  });

  it('valid arguments insert the row', async () => {
    const app = host([notes]);
    const res = await rpc(app, 'feature-notes', 'addNote', [{ body: 'hello', stars: 3 }]);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({
      body: 'hello',
      stars: 3,
      id: expect.any(String),
      createdAt: expect.any(String),
    });
    const list = (await (
      await rpc(app, 'feature-notes', 'listNotes', [{ where: { body: { eq: 'hello' } } }])
    ).json()) as { rows: unknown[] };
    expect(list.rows).toHaveLength(1);
  });

  it('a plain function that throws the row itself', async () => {
    const app = host([main]);
    const row = await expectRow((headers) => rpc(app, FEATURE, 'refusesTitle', [], headers), 'invalidArguments');
    expect(row.error).toBe('Invalid arguments: args[0].title: expected string, got number');
  });
});

describe('429 Rate limit exceeded', () => {
  it('past the installation budget, with Retry-After; another tenant has its own budget', async () => {
    const limited = await track(
      plainFeature('feature-limited', functions, { manifest: { rateLimits: { plain: { limit: 2, windowSec: 60 } } } }),
    );
    const app = host([limited], {
      rateLimiter: new MemoryRateLimiter(),
      identify: createIdentify({ mode: 'jwt', hs256Secret: SECRET }, { dev: false }),
    });
    const acme = { authorization: `Bearer ${await signHs({ sub: 'ann', tenant_id: 'acme' })}` };
    const globex = { authorization: `Bearer ${await signHs({ sub: 'bob', tenant_id: 'globex' })}` };
    for (let i = 0; i < 2; i++) expect((await rpc(app, 'feature-limited', 'echo', [i], acme)).status).toBe(200);
    const row = await expectRow(
      (headers) => rpc(app, 'feature-limited', 'echo', [], { ...acme, ...headers }),
      'rateLimited',
    );
    const retryAfter = Number(row.headers.get('retry-after'));
    expect(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60, `Retry-After ${retryAfter}`).toBe(true);
    expect((await rpc(app, 'feature-limited', 'echo', [], globex)).status).toBe(200);
  });
});

describe('500', () => {
  it('the thrown message in dev', async () => {
    const app = host([main], { dev: true });
    const row = await expectRow((headers) => rpc(app, FEATURE, 'fails', [], headers), {
      status: 500,
      text: 'database exploded at db.internal:5432',
    });
    expect(row.error).toBe('database exploded at db.internal:5432');
    await expectRow((headers) => rpc(app, FEATURE, 'throwsString', [], headers), {
      status: 500,
      text: 'plain string thrown',
    });
  });

  it('`Internal error` in production, with the error kept for the terminal', async () => {
    const app = host([main]);
    logged.length = 0;
    for (const fn of ['fails', 'throwsString']) {
      const row = await expectRow((headers) => rpc(app, FEATURE, fn, [], headers), 'internal');
      expect(row.error).toBe('Internal error');
    }
    expect(logged.map((e) => (e as Error).message)).toEqual(
      expect.arrayContaining(['database exploded at db.internal:5432', 'plain string thrown']),
    );
  });
});

describe('502 RPC upstream error (endpoint mode)', () => {
  let app: ReturnType<typeof host>;

  beforeAll(async () => {
    const down = `http://127.0.0.1:${await closedPort()}/rpc`;
    const endpoint = await track(
      featureRuntime(
        { id: 'feature-ep', serverFunctions: { endpoint: `${upstream.url}/rpc`, exports: ['getData', 'garbage'] } },
        { modules: () => [] },
      ),
    );
    const unreachable = await track(
      featureRuntime(
        { id: 'feature-ep-down', serverFunctions: { endpoint: down, exports: ['getData'] } },
        { modules: () => [] },
      ),
    );
    app = host([endpoint, unreachable]);
  });

  it('the upstream answers JSON: passed through', async () => {
    const res = await rpc(app, 'feature-ep', 'getData');
    expect([res.status, await res.json()]).toEqual([200, { items: ['a', 'b'] }]);
  });

  it('the upstream answers something that is not JSON', async () => {
    await expectRow((headers) => rpc(app, 'feature-ep', 'garbage', [], headers), 'upstream');
  });

  it('the upstream is unreachable', async () => {
    await expectRow((headers) => rpc(app, 'feature-ep-down', 'getData', [], headers), 'upstream');
  });
});

describe('503', () => {
  it('Server functions unavailable: the module fails to load (named in the answer)', async () => {
    const runtime = await track(
      featureRuntime(
        { id: 'feature-broken', serverFunctions: { module: 'server-functions.js', exports: ['getData'] } },
        {
          modules: () => [brokenModule('src/api.server.ts', ['getData'], 'Unexpected token (1:9)')],
        },
      ),
    );
    await runtime.load();
    const app = host([runtime]);
    const row = await expectRow((headers) => rpc(app, 'feature-broken', 'getData', [], headers), 'unavailable');
    expect(row.error).toBe(`${contractText('unavailable')}: src/api.server.ts failed to load: Unexpected token (1:9)`);
  });

  it('Server functions unavailable: the feature was marked unavailable', async () => {
    const runtime = await track(plainFeature('feature-marked', { getData: () => 1 }));
    const app = host([runtime]);
    expect((await rpc(app, 'feature-marked', 'getData')).status).toBe(200);
    runtime.markUnavailable('the module does not match serverFunctionsSha256 of the active release');
    const row = await expectRow((headers) => rpc(app, 'feature-marked', 'getData', [], headers), 'unavailable');
    expect(row.error).toMatch(/serverFunctionsSha256 of the active release$/);
  });

  it('Server functions unavailable: no module and no endpoint', async () => {
    const runtime = await track(featureRuntime({ id: 'feature-static' }, { modules: () => [] }));
    await runtime.load();
    const app = host([runtime]);
    await expectRow((headers) => rpc(app, 'feature-static', 'getData', [], headers), 'unavailable');
  });

  it('Server functions unavailable: tables defined but the host has no database', async () => {
    const schema = defineSchema({ notes: defineTable({ body: v.string() }) });
    const runtime = await track(
      featureRuntime(
        { id: 'feature-nodb', serverFunctions: { module: 'server-functions.js', exports: ['listNotes'] } },
        {
          schema: async () => ({ namespace: { default: schema }, file: 'server/schema.ts' }),
          modules: () => [
            {
              file: 'src/notes.server.ts',
              exportNames: ['listNotes'],
              load: () => ({ listNotes: queryRows('notes') }),
            },
          ],
        },
      ),
    );
    await runtime.load();
    const app = host([runtime]);
    const row = await expectRow((headers) => rpc(app, 'feature-nodb', 'listNotes', [{}], headers), 'unavailable');
    expect(row.error).toMatch(/no database/);
  });

  it('RPC execution timed out: a function past timeoutMs, with ctx.signal aborted', async () => {
    const slow = await track(plainFeature('feature-slow', functions, { manifest: { timeoutMs: 50 } }));
    const app = host([slow]);
    signals.length = 0;
    const started = performance.now();
    await expectRow((headers) => rpc(app, 'feature-slow', 'neverResolves', [], headers), 'timedOut');
    expect(performance.now() - started).toBeLessThan(5000);
    expect(signals).toHaveLength(2);
    expect(signals.every((signal) => signal.aborted)).toBe(true);
  });

  it('RPC upstream timed out: an endpoint silent past timeoutMs', async () => {
    const endpoint = await track(
      featureRuntime(
        {
          id: 'feature-ep-slow',
          timeoutMs: 100,
          serverFunctions: { endpoint: `${upstream.url}/rpc`, exports: ['slow'] },
        },
        { modules: () => [] },
      ),
    );
    const app = host([endpoint]);
    await expectRow((headers) => rpc(app, 'feature-ep-slow', 'slow', [], headers), 'upstreamTimedOut');
  });
});

describe('/_health and /_admin', () => {
  it('GET /_health/{featureId}: 200 with featureId, version, mode, exports, loadedAt; 404 if absent', async () => {
    const app = host([main]);
    const res = await app.request(`/_health/${FEATURE}`);
    expect(res.status).toBe(200);
    const health = (await res.json()) as { exports: string[]; loadedAt: string };
    expect(health).toMatchObject({ featureId: FEATURE, version: '1.2.3', mode: 'module' });
    expect(health.exports.sort()).toEqual(Object.keys(functions).sort());
    expect(Date.parse(health.loadedAt)).toBeGreaterThan(0);
    await expectRow((headers) => app.request('/_health/feature-nope', { headers }), 'featureNotFound', 'feature-nope');
  });

  it('GET /_admin in dev lists declared vs actual exports and recent calls with their status; outside dev without a token it is not served', async () => {
    const app = host([main], { dev: true });
    await rpc(app, FEATURE, 'echo');
    await rpc(app, FEATURE, 'declaredOnly');
    await rpc(app, FEATURE, 'fails');
    const res = await app.request('/_admin', { headers: { accept: 'application/json' } });
    expect(res.status).toBe(200);
    const report = (await res.json()) as {
      features: { featureId: string; declaredOnly: string[] }[];
      calls: { fnName: string; status: number }[];
    };
    expect(report.features).toEqual([expect.objectContaining({ featureId: FEATURE, declaredOnly: ['declaredOnly'] })]);
    expect(report.calls.map((c) => [c.fnName, c.status])).toEqual(
      expect.arrayContaining([
        ['echo', 200],
        ['declaredOnly', 403],
        ['fails', 500],
      ]),
    );
    expect((await host([main]).request('/_admin', { headers: { accept: 'application/json' } })).status).toBe(404);
  });
});
