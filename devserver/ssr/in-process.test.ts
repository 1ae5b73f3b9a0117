import { afterEach, describe, expect, it } from 'vitest';
import { RpcError } from '../../runtime/rpc-error.js';
import { createInProcessFunction, favnRequestMiddleware, registerDevHost, runWithRequest } from './in-process.js';

/** What the host saw of each call. */
const seen: { url: string; headers: Record<string, string>; body: unknown }[] = [];
let answer: (request: Request) => Response = () => Response.json('ok');
let unregister = registerDevHost(async (request) => {
  seen.push({ url: request.url, headers: Object.fromEntries(request.headers), body: await request.json() });
  return answer(request);
});

afterEach(() => {
  seen.length = 0;
  answer = () => Response.json('ok');
});

describe('server functions called during server rendering', () => {
  const greet = createInProcessFunction('feature-x', 'greet');

  it('post to the host in this process as the contract route, with the arguments as sent by a browser', async () => {
    expect(await greet('ann', { n: 1 })).toBe('ok');
    expect(seen).toEqual([
      {
        url: 'http://in-process/rpc/feature-x/greet',
        headers: { 'content-type': 'application/json', 'sec-fetch-site': 'same-origin' },
        body: { args: ['ann', { n: 1 }] },
      },
    ]);
    expect([greet.name, (greet as unknown as { featureId: string }).featureId]).toEqual(['greet', 'feature-x']);
  });

  it("carry the rendered request's credentials, and nothing else of it", async () => {
    const request = new Request('http://app.example/', {
      headers: {
        cookie: 'session=abc',
        authorization: 'Bearer t',
        'x-favn-dev-identity': '{"sub":"alice"}',
        'x-forwarded-for': '203.0.113.9',
        origin: 'https://evil.example',
      },
    });
    await runWithRequest(request, () => greet());
    expect(seen[0]?.headers).toEqual({
      authorization: 'Bearer t',
      cookie: 'session=abc',
      'x-favn-dev-identity': '{"sub":"alice"}',
      'content-type': 'application/json',
      'sec-fetch-site': 'same-origin',
    });
    // Node's request headers (an object, arrays for repeated ones) work the same, and so does the middleware.
    await runWithRequest({ headers: { cookie: ['a=1', 'b=2'] } }, () => greet());
    expect(seen[1]?.headers.cookie).toBe('a=1; b=2');
    await favnRequestMiddleware({ request: new Request('http://x/', { headers: { authorization: 'Bearer m' } }) }, () =>
      greet(),
    );
    expect(seen[2]?.headers.authorization).toBe('Bearer m');
    // Concurrent renders keep their own caller.
    await Promise.all([
      runWithRequest({ headers: { authorization: 'Bearer one' } }, async () => {
        await new Promise((r) => setTimeout(r, 20));
        return greet('one');
      }),
      runWithRequest({ headers: { authorization: 'Bearer two' } }, () => greet('two')),
    ]);
    const byArg = Object.fromEntries(
      seen.slice(3).map((s) => [(s.body as { args: string[] }).args[0], s.headers.authorization]),
    );
    expect(byArg).toEqual({ one: 'Bearer one', two: 'Bearer two' });
  });

  it("throw the contract's errors as RpcError, as the browser's proxy does", async () => {
    answer = () =>
      Response.json(
        { error: 'Function "greet" is not declared in serverFunctions.exports', requestId: 'r-1' },
        { status: 403, headers: { 'x-request-id': 'r-1' } },
      );
    const error = await greet().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RpcError);
    expect(error).toMatchObject({
      status: 403,
      message: 'Function "greet" is not declared in serverFunctions.exports',
      requestId: 'r-1',
    });
    answer = () => new Response('<html>', { status: 200 });
    expect(await greet().catch((e: unknown) => e)).toMatchObject({
      status: 200,
      message: 'greet returned a response that is not JSON',
    });
  });

  it('without a dev host, load the built feature from the given folder and say why when it is not there', async () => {
    unregister();
    try {
      const missing = createInProcessFunction('feature-x', 'greet', 'no-such-dist-server');
      await expect(missing()).rejects.toThrow(/no-such-dist-server/);
    } finally {
      unregister = registerDevHost(async (request) => {
        seen.push({ url: request.url, headers: Object.fromEntries(request.headers), body: await request.json() });
        return answer(request);
      });
    }
  });
});
