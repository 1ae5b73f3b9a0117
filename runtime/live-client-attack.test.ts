/**
 * Live queries and the settings document when the push stream is unreliable: refused, cut right
 * after it opens, or up for a moment while a plain call is under way. Through the real browser
 * client and `fetch` against a loopback host whose behaviour each feature id picks. A query must
 * always end up showing an answer (once), and must not pile up calls the host then answers for nothing.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { configureRpc, createServerFunction, sharedStorage, subscribe, type LiveStatus } from './client.js';
import type { ServerContext } from './server.js';

type GetNote = (ctx: ServerContext, id: string) => Promise<string>;
const getNote = (featureId: string) => createServerFunction(featureId, 'getNote') as unknown as GetNote;

/** How one feature's host behaves; `n` counts from 1 per feature and kind of request. */
interface Behaviour {
  /** The push stream; by default refused with 503. */
  stream?: (res: ServerResponse, n: number) => void;
  /** ms before a call's answer (`null`: never answered). */
  hold?: (n: number) => number | null;
  /** The settings document: ms before a read's answer, and the status of a save. */
  readHold?: number;
  saveStatus?: number;
}

const behaviours = new Map<string, Behaviour>();
/** Per feature: the calls as the host saw them, `plain` or `live` (with `x-favn-live`). */
const calls = new Map<string, string[]>();
const streams = new Map<string, number>();
const documents = new Map<string, unknown>();
let server: Server;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
};

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  let body = '';
  for await (const chunk of req) body += String(chunk);
  const [, kind, featureId = '', rest] = (req.url ?? '').split('/');
  const behaviour = behaviours.get(decodeURIComponent(featureId)) ?? {};
  // No WebSocket here: the client opens the stream over fetch.
  if (req.headers.upgrade) return json(res, 400, { error: 'no sockets', requestId: 'r' });
  if (kind === '_live') {
    if (rest === 'unsubscribe') return json(res, 200, null);
    const n = (streams.get(featureId) ?? 0) + 1;
    streams.set(featureId, n);
    if (behaviour.stream) return behaviour.stream(res, n);
    return json(res, 503, { error: 'Live queries are unavailable', requestId: 'r' });
  }
  const seen = calls.get(featureId) ?? [];
  calls.set(featureId, seen);
  const live = req.headers['x-favn-live'];
  if (kind === '_storage') {
    seen.push(`${req.method} ${live ? 'live' : 'plain'}`);
    if (req.method === 'PUT') {
      const status = behaviour.saveStatus ?? 200;
      if (status !== 200) return json(res, status, { error: 'Document too large', requestId: 'r-save' });
      documents.set(featureId, JSON.parse(body));
      return json(res, 200, documents.get(featureId));
    }
    // The document as it stood when the read arrived, answered after the hold.
    const doc = documents.get(featureId) ?? null;
    await sleep(behaviour.readHold ?? 0);
    return json(res, 200, doc);
  }
  seen.push(live ? 'live' : 'plain');
  const hold = behaviour.hold ? behaviour.hold(seen.length) : 0;
  if (hold === null) return; // never answered
  await sleep(hold);
  const args = (JSON.parse(body) as { args: unknown[] }).args;
  json(res, 200, `note ${String(args[0])}`, live ? { 'x-favn-live': 'on' } : {});
}

/** A stream that says hello (a new connection each time) and is cut `ms` later. */
const cutAfter = (ms: number) => (res: ServerResponse, n: number) => {
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  res.write(`event: hello\ndata: {"connection":"c${n}"}\n\n`);
  setTimeout(() => res.destroy(), ms);
};

beforeAll(async () => {
  server = createServer((req, res) => void handle(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  configureRpc({ baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, featureId: 'feature-attack' });
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

it('sends no other call while a subscribing call is under way on a connection that went down again', async () => {
  const feature = 'feature-attack-blip';
  // Refused twice (the query then asks plainly: 1 s), then one stream that is cut 100 ms after
  // its hello (the query subscribes on it: 4 s), then refused again.
  const blip = cutAfter(100);
  behaviours.set(feature, {
    stream: (res, n) => (n === 3 ? blip(res, n) : json(res, 503, { error: 'unavailable', requestId: 'r' })),
    hold: (n) => (n === 2 ? 4000 : 1000),
  });
  const shown: unknown[] = [];
  const stop = subscribe(getNote(feature), ['a'], (data) => shown.push(data));
  await expect.poll(() => shown, { timeout: 8000 }).toEqual(['note a']);
  // Every call sent has answered by now.
  await sleep(2500);
  stop();
  expect(shown).toEqual(['note a']);
  // The plain call, and the subscribing call on the short-lived connection, which is still under
  // way when the retries after the cut fail: no other call.
  expect(calls.get(feature)).toEqual(['plain', 'live']);
  // At least one retry came after the cut (streams 1-2 refused, 3 the short one); how many more
  // depends on how fast a loaded machine runs the backoff.
  expect(streams.get(feature)).toBeGreaterThanOrEqual(4);
}, 20_000);

it('shows an answer when every stream is cut soon after it opens and the host is slower than that', async () => {
  const feature = 'feature-attack-flap';
  // A proxy that cuts the stream after 150 ms (the host is reached: every connection says hello);
  // each call takes 1 s. A call is answered every time: only the client can drop it.
  behaviours.set(feature, { stream: cutAfter(150), hold: () => 1000 });
  const shown: unknown[] = [];
  const statuses: LiveStatus[] = [];
  const stop = subscribe(getNote(feature), ['b'], (data) => shown.push(data), undefined, {
    onStatus: (status) => statuses.push(status),
  });
  try {
    await expect.poll(() => shown, { timeout: 8000 }).toEqual(['note b']);
  } finally {
    stop();
  }
  expect(statuses).toContain('reconnecting');
}, 15_000);

it('sends one call per query, not one per reconnect, for many queries on a refused stream', async () => {
  const feature = 'feature-attack-many';
  behaviours.set(feature, { hold: () => 1800 });
  const shown = new Map<number, unknown[]>();
  const stops = Array.from({ length: 20 }, (_, i) => {
    shown.set(i, []);
    return subscribe(getNote(feature), [`q${i}`], (data) => shown.get(i)!.push(data));
  });
  await expect.poll(() => [...shown.values()].every((list) => list.length === 1), { timeout: 6000 }).toBe(true);
  await sleep(600);
  for (const stop of stops) stop();
  expect([...shown.entries()].map(([i, list]) => [i, list])).toEqual(
    Array.from({ length: 20 }, (_, i) => [i, [`note q${i}`]]),
  );
  expect(calls.get(feature)).toEqual(Array.from({ length: 20 }, () => 'plain'));
  expect(streams.get(feature)).toBeGreaterThanOrEqual(3);
}, 15_000);

it('shows nothing, and sends nothing more, after stop() during a plain call', async () => {
  const feature = 'feature-attack-stop';
  behaviours.set(feature, { hold: () => 800 });
  const shown: unknown[] = [];
  const errors: unknown[] = [];
  const stop = subscribe(
    getNote(feature),
    ['c'],
    (data) => shown.push(data),
    (error) => errors.push(error),
  );
  await expect.poll(() => calls.get(feature)?.length ?? 0, { timeout: 3000 }).toBe(1);
  stop();
  const streamsAtStop = streams.get(feature) ?? 0;
  await sleep(2000);
  expect(shown).toEqual([]);
  expect(errors).toEqual([]);
  expect(calls.get(feature)).toEqual(['plain']);
  // The channel closes a moment after its last query: no more reconnect attempts.
  expect(streams.get(feature) ?? 0).toBeLessThanOrEqual(streamsAtStop + 1);
}, 15_000);

it('asks again when the host never answers a plain call, while the stream stays refused', async () => {
  const feature = 'feature-attack-hung';
  // The first call is lost (a dead keep-alive connection, a host that hung on it); later ones answer.
  behaviours.set(feature, { hold: (n) => (n === 1 ? null : 100) });
  const shown: unknown[] = [];
  const stop = subscribe(getNote(feature), ['d'], (data) => shown.push(data));
  try {
    // A plain call unanswered for 5 s is sent again at the next reconnect attempt (the backoff
    // grows to 2-4 s by then).
    await expect.poll(() => shown, { timeout: 14_000 }).toEqual(['note d']);
  } finally {
    stop();
  }
}, 20_000);

it('shows the stored settings document when a save fails while the first read is under way', async () => {
  const feature = 'feature-attack-save-fails';
  documents.set(feature, { theme: 'dark' });
  behaviours.set(feature, { readHold: 800, saveStatus: 413 });
  const storage = sharedStorage(feature);
  const stop = storage.subscribe(() => {});
  try {
    await expect.poll(() => calls.get(feature), { timeout: 3000 }).toEqual(['GET plain']);
    await expect(storage.save({ theme: 'x'.repeat(10) })).rejects.toThrow('Document too large');
    expect(storage.current().error?.status).toBe(413);
    // The read answers after the failed save: the document did not change, so it is what to show.
    await sleep(1500);
    expect(storage.current().data).toEqual({ theme: 'dark' });
  } finally {
    stop();
  }
}, 15_000);

it('shows the saved document, not the one a read under way during the save brings back', async () => {
  const feature = 'feature-attack-save-wins';
  documents.set(feature, { theme: 'dark' });
  behaviours.set(feature, { readHold: 800 });
  const storage = sharedStorage(feature);
  const seen: unknown[] = [];
  const stop = storage.subscribe(() => seen.push(storage.current().data));
  try {
    await expect.poll(() => calls.get(feature), { timeout: 3000 }).toEqual(['GET plain']);
    await storage.save({ theme: 'light' });
    expect(storage.current().data).toEqual({ theme: 'light' });
    await sleep(1500);
    expect(storage.current()).toEqual({ data: { theme: 'light' }, error: undefined, loading: false });
    expect(seen).not.toContainEqual({ theme: 'dark' });
    expect(calls.get(feature)).toEqual(['GET plain', 'PUT plain']);
  } finally {
    stop();
  }
}, 15_000);

it('subscribes again, once, when the host ends a subscription with 401, and shows the new answer', async () => {
  const feature = 'feature-attack-expired';
  let stream: ServerResponse | undefined;
  behaviours.set(feature, {
    stream: (res, n) => {
      stream = res;
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(`event: hello\ndata: {"connection":"c${n}"}\n\n`);
    },
    hold: () => 50,
  });
  const shown: unknown[] = [];
  const errors: number[] = [];
  const statuses: LiveStatus[] = [];
  const stop = subscribe(
    getNote(feature),
    ['e'],
    (data) => shown.push(data),
    (error) => errors.push(error.status),
    { onStatus: (status) => statuses.push(status) },
  );
  try {
    await expect.poll(() => statuses.at(-1), { timeout: 4000 }).toBe('live');
    const sub = 's1';
    const ended = { status: 401, error: 'Token expired', requestId: 'r-401' };
    stream!.write(`data: ${JSON.stringify({ sub, error: ended, ended: true })}\n\n`);
    await expect.poll(() => shown, { timeout: 4000 }).toEqual(['note e', 'note e']);
    await sleep(300);
    expect(errors).toEqual([401]);
    expect(calls.get(feature)).toEqual(['live', 'live']);
    expect(statuses.at(-1)).toBe('live');
    expect(streams.get(feature)).toBe(1);
  } finally {
    stop();
  }
}, 15_000);
