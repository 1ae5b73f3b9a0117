import { describe, expect, it } from 'vitest';
import { createHost } from './host.js';
import { FeatureRuntime } from '../feature/feature-runtime.js';

const functions: Record<string, unknown> = {
  echo: (_ctx: unknown, ...args: unknown[]) => args,
  first: (_ctx: unknown, value: unknown) => value,
  throwsLong: (_ctx: unknown, status: number, repeat: number) => {
    throw Object.assign(new Error(`bad ${'ü'.repeat(repeat)}`), { statusCode: status });
  },
  throws: (_ctx: unknown, status: number, message: string) => {
    throw Object.assign(new Error(message), { statusCode: status });
  },
  throwsStatusObject: (_ctx: unknown, status: unknown) => {
    throw { status, message: 'object thrown' };
  },
  deep: (_ctx: unknown, depth: number) => {
    let value: unknown = 0;
    for (let i = 0; i < depth; i++) value = [value];
    return value;
  },
};

function testHost(dev = false) {
  const names = Object.keys(functions);
  const manifest = { id: 'feature-a', raw: {}, serverFunctions: { module: 'fns.server.ts', exports: names } };
  const runtime = new FeatureRuntime(manifest, {
    modules: () => [{ file: 'fns.server.ts', exportNames: names, load: () => functions }],
  });
  const host = createHost([runtime.feature], { dev, logCall: null, logError: () => {} });
  const ready = runtime.load();
  const post = async (path: string, body: string, headers: Record<string, string> = {}) => {
    await ready;
    return host.app.request(path, {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json', ...headers },
    });
  };
  return { host, post, call: (fn: string, args: unknown[]) => post(`/rpc/feature-a/${fn}`, JSON.stringify({ args })) };
}

async function contractError(res: Response): Promise<{ status: number; error: string }> {
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  const body = (await res.json()) as { error: string; requestId: string };
  expect(Object.keys(body).sort()).toEqual(['error', 'requestId']);
  expect(body.requestId).toMatch(/^[0-9a-f-]{36}$/);
  expect(res.headers.get('x-request-id')).toBe(body.requestId);
  return { status: res.status, error: body.error };
}

const nested = (depth: number) => `${'['.repeat(depth)}0${']'.repeat(depth)}`;

describe('the RPC route through app.request', () => {
  it.each([
    '/rpc',
    '/rpc/',
    '/rpc/feature-a',
    '/rpc/feature-a/',
    '/rpc/feature-a/echo/',
    '/rpc/feature-a//echo',
    '/rpc//echo',
    '/rpc/feature-a/echo/extra',
    '/rpc/a/b/c/d',
  ])('%s answers 404 in the contract shape', async (path) => {
    const { post } = testHost();
    for (const method of ['POST', 'GET']) {
      const res = method === 'POST' ? await post(path, '{"args":[]}') : await testHost().host.app.request(path);
      expect(await contractError(res)).toEqual({
        status: 404,
        error: 'Not found: RPC calls go to POST /rpc/{featureId}/{fnName}',
      });
    }
  });

  it('arguments may nest 64 levels; 65 and 100,000 are 400 before any function runs', async () => {
    const { post } = testHost();
    const ok = await post('/rpc/feature-a/first', `{"args":[${nested(64)}]}`);
    expect([ok.status, await ok.text()]).toEqual([200, nested(64)]);
    for (const depth of [65, 100_000]) {
      const res = await post('/rpc/feature-a/echo', `{"args":[${nested(depth)}]}`);
      expect(await contractError(res)).toEqual({
        status: 400,
        error: 'Malformed RPC request: arguments are nested deeper than 64 levels',
      });
    }
    // Brackets inside strings are not nesting.
    const text = await post('/rpc/feature-a/echo', JSON.stringify({ args: ['['.repeat(10_000)] }));
    expect(text.status).toBe(200);
  });

  it('results may nest 64 levels; deeper ones are a clear 500', async () => {
    const { call } = testHost(true);
    expect((await call('deep', [64])).status).toBe(200);
    for (const depth of [65, 5000]) {
      expect(await contractError(await call('deep', [depth]))).toEqual({
        status: 500,
        error: 'deep returned a value nested deeper than 64 levels, which is not sent',
      });
    }
  });

  it.each([
    [599, 500],
    [299, 500],
    [600, 500],
    [450, 500],
    [418, 418],
    [422, 422],
    [503, 503],
  ])('a thrown statusCode %i answers %i', async (thrown, expected) => {
    const { call } = testHost(true);
    expect((await contractError(await call('throws', [thrown, 'oops']))).status).toBe(expected);
    expect((await contractError(await call('throwsStatusObject', [thrown]))).status).toBe(expected);
  });

  it('a 4xx message is cut to 4 KiB of UTF-8 and says so; a short one is sent whole', async () => {
    const { call } = testHost();
    const long = await contractError(await call('throwsLong', [422, 3_000_000]));
    expect(long.status).toBe(422);
    expect(Buffer.byteLength(long.error)).toBeLessThanOrEqual(4096);
    expect(long.error).toMatch(/^bad ü+ … \(cut: the message had 6000004 bytes\)$/);
    expect(long.error).not.toContain('\uFFFD');
    expect(await contractError(await call('throws', [403, 'no']))).toEqual({ status: 403, error: 'no' });
  });

  it('5xx messages stay on the server outside dev', async () => {
    const { call } = testHost(false);
    expect(await contractError(await call('throws', [500, 'secret detail']))).toEqual({
      status: 500,
      error: 'Internal error',
    });
  });
});
