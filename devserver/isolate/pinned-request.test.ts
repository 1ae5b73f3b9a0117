import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isCtxFetchConnection } from './fetch-sockets.js';
import { pinnedRequest } from './pinned-request.js';

describe('pinnedRequest', () => {
  let server: Server;
  let port: number;
  const seen: IncomingHttpHeaders[] = [];
  const fromCtxFetch: boolean[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      seen.push(req.headers);
      fromCtxFetch.push(isCtxFetchConnection(req.socket.remoteAddress, req.socket.remotePort));
      res.writeHead(200).end('pinned');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => server.close());

  it('connects to the checked address, never asks DNS again, and keeps the name in Host', async () => {
    // `.invalid` never resolves (RFC 6761): reaching the server proves the address was pinned.
    const url = new URL(`http://rebind.invalid:${port}/x`);
    const init = { method: 'GET', headers: { accept: '*/*' }, body: undefined };
    const response = await pinnedRequest(
      url,
      [{ address: '127.0.0.1', family: 4 }],
      init,
      new AbortController().signal,
    );
    let text = '';
    for await (const chunk of response) text += String(chunk);
    expect([response.statusCode, text]).toEqual([200, 'pinned']);
    expect(seen.at(-1)!.host).toBe(`rebind.invalid:${port}`);
    // Only what was given: no cookie, credential or forwarding header of anyone's.
    expect(Object.keys(seen.at(-1)!).sort()).toEqual(['accept', 'connection', 'host']);
  });

  it('a server of this process can tell a connection from ctx.fetch from any other', async () => {
    const init = { method: 'GET', headers: {}, body: undefined };
    const loopback = [{ address: '127.0.0.1', family: 4 }];
    const response = await pinnedRequest(
      new URL(`http://127.0.0.1:${port}/`),
      loopback,
      init,
      new AbortController().signal,
    );
    response.resume();
    await fetch(`http://127.0.0.1:${port}/`).then((r) => r.text());
    expect(fromCtxFetch.slice(-2)).toEqual([true, false]);
  });

  it('honours the abort signal', async () => {
    const controller = new AbortController();
    controller.abort(new Error('stop'));
    const init = { method: 'GET', headers: {}, body: undefined };
    const loopback = [{ address: '127.0.0.1', family: 4 }];
    await expect(
      pinnedRequest(new URL(`http://127.0.0.1:${port}/`), loopback, init, controller.signal),
    ).rejects.toThrow('The operation was aborted');
  });
});
