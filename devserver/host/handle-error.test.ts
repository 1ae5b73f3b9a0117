import type { Hono } from 'hono';
import { basicAuth } from 'hono/basic-auth';
import { describe, expect, it } from 'vitest';
import { REQUEST_ID_HEADER } from '../../runtime/protocol.js';
import { RequestError } from '../../runtime/request-error.js';
import { httpError } from '../../runtime/server.js';
import { assignRequestId } from '../common/request-id.js';
import { createHost, type HostEnv } from './host.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** What `GET /throw` throws, per test. */
let thrown: unknown;

/**
 * A real host (its own `app.onError`) with a route and a `before` middleware that throw, and one
 * Hono helper (basic auth) that throws Hono's own exception class. Stack traces land in `logged`.
 */
function testHost(dev: boolean) {
  const logged: unknown[] = [];
  const host = createHost([], {
    dev,
    logCall: null,
    logError: (_message, error) => logged.push(error),
    before(app: Hono<HostEnv>) {
      app.use('/guarded/*', async (_c, next) => {
        if (thrown !== undefined) throw thrown;
        await next();
      });
      app.get('/guarded/page', (c) => c.text('page'));
      app.use('/basic/*', basicAuth({ username: 'ann', password: 'secret' }));
      app.get('/basic/page', (c) => c.text('page'));
      app.get('/throw', () => {
        throw thrown;
      });
      app.get('/assigned', (c) => {
        assignRequestId(c);
        throw thrown;
      });
    },
  });
  return { app: host.app, logged };
}

/** The failure as a client sees it; checks the contract's shape and the request id on the way. */
async function failure(res: Response): Promise<{ status: number; error: string; requestId: string }> {
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  const body = (await res.json()) as { error: string; requestId: string };
  expect(Object.keys(body).sort()).toEqual(['error', 'requestId']);
  expect(res.headers.get(REQUEST_ID_HEADER)).toBe(body.requestId);
  return { status: res.status, ...body };
}

async function answer(error: unknown, dev = false, path = '/throw', headers: Record<string, string> = {}) {
  thrown = error;
  const host = testHost(dev);
  const res = await host.app.request(path, { headers });
  return { res, logged: host.logged };
}

describe("the host's error handler", () => {
  it('answers a RequestError with its status, message and headers, in production too', async () => {
    const { res, logged } = await answer(
      RequestError.of('rateLimited', 'retry in 5 s', undefined, { headers: { 'Retry-After': '5' } }),
    );
    expect(await failure(res)).toMatchObject({
      status: 429,
      error: 'Rate limit exceeded: retry in 5 s',
      requestId: expect.stringMatching(UUID),
    });
    expect(res.headers.get('retry-after')).toBe('5');
    const unavailable = await answer(RequestError.of('unavailable', 'the handler bundle could not be built'));
    expect(await failure(unavailable.res)).toMatchObject({
      status: 503,
      error: 'Server functions unavailable: the handler bundle could not be built',
    });
    // A request error is the answer the host meant to give: no stack trace in the terminal.
    expect([...logged, ...unavailable.logged]).toEqual([]);
  });

  it('keeps the JSON body and the request id when a RequestError carries headers of the same names', async () => {
    const headers = { 'Content-Type': 'text/html', 'X-Request-Id': 'forged', 'x-extra': 'kept' };
    const { res } = await answer(new RequestError(409, 'This note was changed by someone else', { headers }));
    const { status, requestId } = await failure(res);
    expect([status, res.headers.get('x-extra')]).toEqual([409, 'kept']);
    expect(requestId).toMatch(UUID);
  });

  it("answers the exception Hono's own helpers throw (basic auth) in the contract's shape, keeping its headers", async () => {
    thrown = undefined;
    const { app } = testHost(false);
    const res = await app.request('/basic/page');
    expect(await failure(res)).toMatchObject({ status: 401, error: 'Request failed with status 401' });
    expect(res.headers.get('www-authenticate')).toBe('Basic realm="Secure Area"');
    const ok = await app.request('/basic/page', { headers: { authorization: `Basic ${btoa('ann:secret')}` } });
    expect([ok.status, await ok.text()]).toEqual([200, 'page']);
  });

  it("answers a server function's statusCode or status, and its message for 4xx", async () => {
    const forbidden = await answer(Object.assign(new Error('Forbidden: not your report'), { statusCode: 403 }));
    expect(await failure(forbidden.res)).toMatchObject({ status: 403, error: 'Forbidden: not your report' });
    const conflict = await answer(Object.assign(new Error('taken'), { status: 409 }));
    expect(await failure(conflict.res)).toMatchObject({ status: 409, error: 'taken' });
    const empty = await answer(Object.assign(new Error(''), { statusCode: 404 }));
    expect(await failure(empty.res)).toMatchObject({ status: 404, error: 'Request failed with status 404' });
  });

  it.each([
    ['an unregistered status', Object.assign(new Error('odd status'), { statusCode: 599 })],
    ['a status outside 400..599', Object.assign(new Error('odd status'), { statusCode: 200 })],
    ['a RequestError of a non-error status', new RequestError(302, 'odd status')],
  ])('answers %s with 500', async (_what, error) => {
    expect(await failure((await answer(error, true)).res)).toMatchObject({ status: 500, error: 'odd status' });
    expect(await failure((await answer(error, false)).res)).toMatchObject({ status: 500, error: 'Internal error' });
  });

  it('hides a 5xx message outside dev, shows it in dev, and logs the error with its stack either way', async () => {
    const error = new Error('password=hunter2 in the connection string');
    const production = await answer(error, false);
    expect(await failure(production.res)).toMatchObject({ status: 500, error: 'Internal error' });
    expect(production.logged).toEqual([error]);
    const dev = await answer(error, true);
    expect(await failure(dev.res)).toMatchObject({ status: 500, error: 'password=hunter2 in the connection string' });
    const statused = await answer(Object.assign(new Error('db down'), { statusCode: 503 }), false);
    expect(await failure(statused.res)).toMatchObject({ status: 503, error: 'Internal error' });
  });

  it("keeps a server function's httpError(5xx) text out of production, not the contract's 5xx texts", async () => {
    for (const error of [httpError(500, 'ledger out of balance'), new RequestError(503, 'maintenance until 3 pm')]) {
      const production = await answer(error, false);
      expect(await failure(production.res)).toMatchObject({ status: error.status, error: 'Internal error' });
      expect(production.logged).toEqual([error]);
      expect(await failure((await answer(error, true)).res)).toMatchObject({
        status: error.status,
        error: error.message,
      });
    }
    for (const error of [
      RequestError.of('timedOut', 'getData did not finish within 1000 ms'),
      RequestError.of('upstream', 'connection refused'),
    ]) {
      const production = await answer(error, false);
      expect(await failure(production.res)).toMatchObject({ status: error.status, error: error.message });
      expect(production.logged).toEqual([]);
    }
  });

  it("answers a RequestError of a feature bundle's own copy of the class by its status and headers", async () => {
    // A server bundle carries its own copy of runtime/request-error.ts: same brand, other class.
    const copy = (status: number, message: string, headers: Record<string, string> = {}) =>
      Object.assign(new Error(message), {
        name: 'RequestError',
        status,
        headers,
        [Symbol.for('favn.RequestError')]: true,
      });
    const limited = await answer(copy(429, 'slow down', { 'retry-after': '7' }));
    expect(limited.res.headers.get('retry-after')).toBe('7');
    expect(await failure(limited.res)).toMatchObject({ status: 429, error: 'slow down' });
    // It cannot borrow a contract 5xx text to show its message in production and skip the log.
    for (const error of [
      copy(503, 'Server functions unavailable: the vault key is 1234'),
      new RequestError(500, 'Internal error: the vault key is 1234'),
    ]) {
      const production = await answer(error);
      expect(await failure(production.res)).toMatchObject({ status: error.status, error: 'Internal error' });
      expect(production.logged).toEqual([error]);
    }
  });

  it('reads a branded status once, and drops headers HTTP cannot carry instead of failing the answer', async () => {
    const BRAND = Symbol.for('favn.RequestError');
    let reads = 0;
    // A getter that answers 500 first (passes the check), then 200: the check and the answer agree.
    const flipping = Object.defineProperties(new Error('stack: db.internal:5432'), {
      status: { get: () => (reads++ === 0 ? 500 : 200) },
      headers: { value: {} },
      [BRAND]: { value: true },
    });
    const hidden = await answer(flipping);
    expect(await failure(hidden.res)).toMatchObject({ status: 500, error: 'Internal error' });
    expect(hidden.logged).toEqual([flipping]);
    const taken = Object.assign(new Error('Name taken'), {
      status: 409,
      headers: { 'x-detail': 'nom déjà pris ✓', 'bad name': 'x', 'x-kept': 'yes' },
      [BRAND]: true,
    });
    const conflict = await answer(taken);
    expect(conflict.res.headers.get('x-kept')).toBe('yes');
    expect(conflict.res.headers.get('x-detail')).toBeNull();
    expect(await failure(conflict.res)).toMatchObject({ status: 409, error: 'Name taken' });
  });

  it('cuts a long message to 4 KiB of UTF-8 and says so, whatever threw it', async () => {
    for (const error of [
      new RequestError(422, `bad ${'é'.repeat(5000)}`),
      Object.assign(new Error(`bad ${'é'.repeat(5000)}`), { statusCode: 422 }),
    ]) {
      const { error: message } = await failure((await answer(error)).res);
      expect(Buffer.byteLength(message)).toBeLessThanOrEqual(4096);
      expect(message).toMatch(/^bad é+ … \(cut: the message had 10004 bytes\)$/);
    }
  });

  it("reuses the caller's safe x-request-id, replaces an unsafe one, and keeps the one the route picked", async () => {
    const error = RequestError.of('malformed');
    const kept = await failure((await answer(error, false, '/throw', { [REQUEST_ID_HEADER]: 'trace-42' })).res);
    expect(kept).toMatchObject({ status: 400, error: 'Malformed RPC request', requestId: 'trace-42' });
    const replaced = await failure((await answer(error, false, '/throw', { [REQUEST_ID_HEADER]: 'a b' })).res);
    expect(replaced.requestId).toMatch(UUID);
    const assigned = await failure((await answer(error, false, '/assigned', { [REQUEST_ID_HEADER]: 'trace-43' })).res);
    expect(assigned.requestId).toBe('trace-43');
  });

  it('answers errors thrown by middleware registered with `before`, and lets other requests through', async () => {
    const { res } = await answer(
      new RequestError(403, 'Forbidden: host "evil.example" is not allowed'),
      false,
      '/guarded/page',
    );
    expect(await failure(res)).toMatchObject({ status: 403, error: 'Forbidden: host "evil.example" is not allowed' });
    const passing = await answer(undefined, false, '/guarded/page');
    expect([passing.res.status, await passing.res.text()]).toEqual([200, 'page']);
  });
});
