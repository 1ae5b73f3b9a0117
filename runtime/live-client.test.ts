/**
 * The browser client's live queries when the push stream cannot open (a host without live
 * queries, a proxy that drops the stream): through the real client, `fetch`, and a loopback host.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { configureRpc, createServerFunction, subscribe, type LiveStatus } from './client.js';
import type { ServerContext } from './server.js';

const FEATURE = 'feature-live-client-unit';
const getNote = createServerFunction(FEATURE, 'getNote') as unknown as (
  ctx: ServerContext,
  id: string,
) => Promise<string>;

/** How long the host holds each call's answer. */
const HOLD_MS = 1500;
const calls: string[] = [];
let streamsRefused = 0;
let server: Server;

beforeAll(async () => {
  server = createServer(async (req, res) => {
    let body = '';
    for await (const chunk of req) body += String(chunk);
    if (req.url?.startsWith('/_live/')) {
      streamsRefused++;
      res.writeHead(503, { 'content-type': 'application/json' });
      return res.end(JSON.stringify({ error: 'Live queries are unavailable', requestId: 'r' }));
    }
    const args = (JSON.parse(body) as { args: unknown[] }).args;
    calls.push(`${req.url?.split('/').pop()}(${JSON.stringify(args).slice(1, -1)})`);
    await new Promise((resolve) => setTimeout(resolve, HOLD_MS));
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(`note ${String(args[0])}`));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  configureRpc({ baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, featureId: FEATURE });
});

afterAll(() => new Promise((resolve) => server.close(resolve)));

it('while the stream keeps failing, a query sends one call at a time, not one per reconnect attempt', async () => {
  const shown: unknown[] = [];
  const statuses: LiveStatus[] = [];
  const stop = subscribe(getNote, ['a'], (data) => shown.push(data), undefined, {
    onStatus: (status) => statuses.push(status),
  });
  // Reconnects are 125-250 ms, then 250-500 ms after the first failure: at least two more refused
  // streams before the held answer arrives.
  await expect.poll(() => shown, { timeout: HOLD_MS + 2000 }).toEqual(['note a']);
  stop();
  expect(streamsRefused).toBeGreaterThanOrEqual(3);
  expect(calls).toEqual(['getNote("a")']);
  expect(statuses).toContain('reconnecting');
});
