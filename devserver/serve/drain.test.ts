import { serve } from '@hono/node-server';
import type { Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { REQUEST_ID_HEADER } from '../../runtime/protocol.js';
import { createHost } from '../host/host.js';
import { createDrain, type Drain } from './drain.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** One raw HTTP/1.1 exchange: the answer, and whether the server closed the socket after it. */
interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
  closedByServer: boolean;
}

let server: Server | null = null;

afterEach(async () => {
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve) ?? resolve(undefined));
  server = null;
});

/**
 * The host as `favn serve` wires the drain (a `before` middleware), on a real socket, with one
 * route (`GET /slow`) that answers when the test says so.
 */
async function drainingHost(): Promise<{ port: number; drain: Drain; release: () => void }> {
  const drain = createDrain();
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const host = createHost([], {
    logCall: null,
    before(app) {
      app.use('*', drain.middleware);
      app.get('/slow', async (c) => {
        await released;
        return c.text('finished');
      });
    },
  });
  server = serve({ fetch: host.app.fetch, port: 0, hostname: '127.0.0.1' }) as Server;
  await new Promise((resolve) => server!.once('listening', resolve));
  return { port: (server.address() as AddressInfo).port, drain, release };
}

/** Sends `request` on a keep-alive connection; waits up to 2 s for the server to close it. */
function exchange(port: number, request: string): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let raw = '';
    let answered: Omit<RawAnswer, 'closedByServer'> | null = null;
    const timer = setTimeout(() => {
      socket.destroy();
      if (answered) resolve({ ...answered, closedByServer: false });
      else reject(new Error(`no answer within 2 s: ${JSON.stringify(raw)}`));
    }, 2000);
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      raw += chunk;
      answered ??= parse(raw);
    });
    socket.on('error', reject);
    socket.on('end', () => {
      clearTimeout(timer);
      answered ??= parse(raw);
      if (answered) resolve({ ...answered, closedByServer: true });
      else reject(new Error(`connection closed without an answer: ${JSON.stringify(raw)}`));
    });
    socket.write(request);
  });
}

/** A complete response with a Content-Length body, else null (more bytes to come). */
function parse(raw: string): Omit<RawAnswer, 'closedByServer'> | null {
  const end = raw.indexOf('\r\n\r\n');
  if (end < 0) return null;
  const [statusLine = '', ...lines] = raw.slice(0, end).split('\r\n');
  const headers = Object.fromEntries(
    lines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]),
  );
  const body = raw.slice(end + 4);
  if (Buffer.byteLength(body) < Number(headers['content-length'] ?? 0)) return null;
  return { status: Number(statusLine.split(' ')[1]), headers, body };
}

function rpcRequest(extraHeaders: string[] = []): string {
  const body = '{"args":["late"]}';
  const head = [
    'POST /rpc/feature-x/echo HTTP/1.1',
    'Host: 127.0.0.1',
    'Connection: keep-alive',
    'Content-Type: application/json',
    `Content-Length: ${body.length}`,
  ];
  return `${[...head, ...extraHeaders].join('\r\n')}\r\n\r\n${body}`;
}

describe('favn serve: draining on shutdown', () => {
  it("refuses new calls with the contract's 503, a real request id and connection: close, while a call in flight finishes", async () => {
    const { port, drain, release } = await drainingHost();
    const inFlight = fetch(`http://127.0.0.1:${port}/slow`);
    await new Promise((resolve) => setTimeout(resolve, 50));
    drain.start();

    const refused = await exchange(port, rpcRequest());
    expect(refused.status).toBe(503);
    expect(refused.headers['content-type']).toMatch(/^application\/json/);
    const body = JSON.parse(refused.body) as { error: string; requestId: string };
    expect(body).toEqual({
      error: 'Server functions unavailable: the host is shutting down',
      requestId: expect.stringMatching(UUID),
    });
    expect(refused.headers[REQUEST_ID_HEADER]).toBe(body.requestId);
    expect(refused.headers.connection).toBe('close');
    // A keep-alive client is not left on a connection to a host that is going away.
    expect(refused.closedByServer).toBe(true);

    const traced = await exchange(port, rpcRequest([`${REQUEST_ID_HEADER}: trace-7`]));
    expect([traced.status, JSON.parse(traced.body).requestId, traced.headers[REQUEST_ID_HEADER]]).toEqual([
      503,
      'trace-7',
      'trace-7',
    ]);

    const settled = drain.settled(10_000);
    release();
    const finished = await inFlight;
    expect([finished.status, await finished.text()]).toEqual([200, 'finished']);
    const started = performance.now();
    await settled;
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('answers every path during the drain, not only RPC', async () => {
    const { port, drain } = await drainingHost();
    drain.start();
    for (const path of ['/_health', '/_admin', '/feature-x/', '/slow']) {
      const res = await fetch(`http://127.0.0.1:${port}${path}`);
      const body = (await res.json()) as { error: string; requestId: string };
      expect([path, res.status, body.error]).toEqual([
        path,
        503,
        'Server functions unavailable: the host is shutting down',
      ]);
      expect(res.headers.get(REQUEST_ID_HEADER)).toBe(body.requestId);
    }
    await drain.settled(10_000);
  });

  it('settles after the grace period when a call never finishes', async () => {
    const { port, drain } = await drainingHost();
    void fetch(`http://127.0.0.1:${port}/slow`).catch(() => {});
    await new Promise((resolve) => setTimeout(resolve, 50));
    drain.start();
    const started = performance.now();
    await drain.settled(200);
    expect(performance.now() - started).toBeGreaterThanOrEqual(150);
  });
});
