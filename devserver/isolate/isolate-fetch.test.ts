import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { brotliCompressSync, deflateSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isolateFetch } from './isolate-fetch.js';

/**
 * The host side of `ctx.fetch` against a real loopback server. The server is listed exactly in
 * `allowHosts` (loopback is refused otherwise); the scenario test `fixtures/handlers-fetch.test.ts`
 * drives the same code from an action.
 */
describe('isolateFetch', () => {
  let server: Server;
  let port: number;
  const seen: { method: string; path: string; headers: IncomingHttpHeaders; body: string }[] = [];
  const signal = new AbortController().signal;
  const fetchWith = async (allowHosts: string[] | null, request: Record<string, unknown>) =>
    JSON.parse(
      await isolateFetch(JSON.stringify(request), { allowHosts, timeoutMs: 1000, maxResponseBytes: 2000 }, signal),
    );
  const listed = () => [`127.0.0.1:${port}`, `localhost:${port}`];

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk) => (body += chunk));
      req.on('end', () => {
        seen.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, body });
        if (req.url === '/cookies')
          return void res.writeHead(200, { 'set-cookie': ['a=1', 'b=2'], 'X-Upper': 'Y' }).end();
        if (req.url === '/br')
          return void res.writeHead(200, { 'content-encoding': 'br' }).end(brotliCompressSync('brotli'));
        if (req.url === '/deflate')
          return void res.writeHead(200, { 'content-encoding': 'deflate' }).end(deflateSync('deflated'));
        if (req.url === '/empty-gzip') return void res.writeHead(204, { 'content-encoding': 'gzip' }).end();
        res.writeHead(200, { 'content-type': 'text/plain' }).end(`${req.method} ${req.url}`);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => server.close());

  it('answers in the shape the isolate expects: status, statusText, url, header pairs, body', async () => {
    const answer = await fetchWith(listed(), { url: `http://127.0.0.1:${port}/cookies` });
    expect(answer).toMatchObject({ status: 200, statusText: 'OK', url: `http://127.0.0.1:${port}/cookies`, body: '' });
    expect(answer.headers).toEqual(
      expect.arrayContaining([
        ['set-cookie', 'a=1'],
        ['set-cookie', 'b=2'],
        ['x-upper', 'Y'],
      ]),
    );
  });

  it('sends the method, headers and body the action gave, and nothing of its own beyond defaults', async () => {
    const headers = [
      ['X-Key', 'k'],
      ['authorization', 'Bearer from-secrets'],
    ];
    const url = `http://127.0.0.1:${port}/echo?q=1#frag`;
    const answer = await fetchWith(listed(), { url, method: 'post', headers, body: '{"a":1}' });
    expect(answer.body).toBe('POST /echo?q=1');
    const request = seen.at(-1)!;
    expect(request.body).toBe('{"a":1}');
    expect(request.headers).toMatchObject({ 'x-key': 'k', authorization: 'Bearer from-secrets' });
    expect(request.headers['content-type']).toBe('text/plain;charset=UTF-8');
    expect(request.headers).not.toHaveProperty('cookie');
  });

  it('an exactly listed name may resolve to loopback; the connection goes where it resolved', async () => {
    expect((await fetchWith(listed(), { url: `http://localhost:${port}/by-name` })).body).toBe('GET /by-name');
  });

  it('undoes br and deflate codings, and leaves an empty 204 alone', async () => {
    expect((await fetchWith(listed(), { url: `http://127.0.0.1:${port}/br` })).body).toBe('brotli');
    expect((await fetchWith(listed(), { url: `http://127.0.0.1:${port}/deflate` })).body).toBe('deflated');
    expect((await fetchWith(listed(), { url: `http://127.0.0.1:${port}/empty-gzip` })).status).toBe(204);
  });

  it.each([
    [{ url: '/relative' }, /is not an absolute URL/],
    [{ url: 'javascript:alert(1)' }, /only http and https URLs can be fetched \(got javascript:\)/],
    [{ url: 'data:text/plain,hi' }, /only http and https URLs can be fetched \(got data:\)/],
    [{ url: 'http://127.0.0.1:25/' }, /port 25 is not fetched/],
    [{ url: 'http://u:p@127.0.0.1/' }, /has credentials in the URL/],
    [{ url: 'http://127.0.0.1/', method: 'TRACE' }, /the method TRACE is not allowed/],
    [{ url: 'http://127.0.0.1/', body: 'x' }, /a GET request cannot have a body/],
    [{ url: 'http://127.0.0.1/', method: 'POST', body: { a: 1 } }, /body must be a string/],
    [
      { url: 'http://127.0.0.1/', headers: [['Transfer-Encoding', 'chunked']] },
      /the transfer-encoding header is set by the host/,
    ],
    [{ url: 'http://127.0.0.1/', headers: [['x', 'a\r\nInjected: 1']] }, /failed: Invalid character in header content/],
  ])('%j is refused: %s', async (request, message) => {
    const count = seen.length;
    await expect(fetchWith(['127.0.0.1', '127.0.0.1:25'], request)).rejects.toThrow(message);
    expect(seen.length).toBe(count);
  });

  it('refuses loopback, and hosts that only a wildcard lists, without connecting', async () => {
    const count = seen.length;
    const refused = (list: string[] | null, url: string) =>
      fetchWith(list, { url }).then(
        () => '',
        (e: Error) => e.message,
      );
    expect(await refused(null, `http://127.0.0.1:${port}/`)).toMatch(/127\.0\.0\.1 is a loopback address/);
    expect(await refused(['*.localhost'], `http://a.localhost:${port}/`)).toMatch(/a\.localhost is this machine/);
    expect(await refused(['127.0.0.1:1'], `http://127.0.0.1:${port}/`)).toMatch(/is not in isolate\.fetch\.allowHosts/);
    expect(seen.length).toBe(count);
  });
});
