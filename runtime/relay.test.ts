/**
 * The host end of the relay (`embedFeature`) against a loopback HTTP host, with a stand-in for the
 * host page's window and the iframe: every message a frame could post is either forwarded as the
 * one call it names, for the bound feature, or refused, answered and logged; nothing else reaches
 * the host.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { embedFeature, RELAY_HELLO, RELAY_PORT, type EmbedOptions, type Refusal } from './relay.js';

const FEATURE = 'feature-relay-unit';

interface Received {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

let server: Server;
let baseUrl: string;
let received: Received[] = [];
/** Calls the loopback host holds back until the test releases them. */
let held: Array<() => void> = [];
let holdCalls = false;

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      received.push({ method: req.method!, url: req.url!, headers: req.headers, body });
      const answer = () => {
        res.writeHead(200, { 'content-type': 'application/json', 'x-request-id': `req-${received.length}` });
        res.end(JSON.stringify({ url: req.url }));
      };
      if (holdCalls) held.push(answer);
      else answer();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

/** The host page's window: the relay listens on it for hellos. */
let hostWindow: EventTarget;
let warn: ReturnType<typeof vi.spyOn>;
beforeEach(() => {
  received = [];
  held = [];
  holdCalls = false;
  hostWindow = new EventTarget();
  vi.stubGlobal('window', hostWindow);
  warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
});
afterEach(() => {
  vi.unstubAllGlobals();
  warn.mockRestore();
});

/** A window standing in for a frame: keeps what the host posts to it. */
function frameWindow() {
  const posted: Array<{ data: unknown; port: MessagePort | undefined }> = [];
  return {
    posted,
    postMessage(data: unknown, options: { transfer?: MessagePort[] }) {
      posted.push({ data, port: options.transfer?.[0] });
    },
  };
}

function post(data: unknown, source: unknown, ports: MessagePort[] = []): void {
  const event = Object.assign(new Event('message'), { data, source, ports });
  hostWindow.dispatchEvent(event);
}

/** Embeds a frame, says hello from it and returns the port the host handed over. */
function embed(options: Partial<EmbedOptions> = {}) {
  const frame = frameWindow();
  const refusals: Refusal[] = [];
  const iframe = { contentWindow: frame } as unknown as HTMLIFrameElement;
  const embedded = embedFeature({
    iframe,
    featureId: FEATURE,
    baseUrl,
    onRefused: (r) => refusals.push(r),
    ...options,
  });
  const key = /favn-relay=([0-9a-f]+)/.exec(embedded.url('/page/'))![1];
  let seq = 0;
  const hello = (from = frame, ports: MessagePort[] = []) => post({ type: RELAY_HELLO, key, seq: ++seq }, from, ports);
  hello();
  const port = frame.posted.at(-1)!.port!;
  const answers: Array<Record<string, unknown>> = [];
  port.onmessage = (event) => answers.push(event.data);
  const answer = async (count: number) => {
    await vi.waitFor(() => expect(answers.length).toBeGreaterThanOrEqual(count), { timeout: 3_000 });
    return answers[count - 1]!;
  };
  return { frame, port, answers, answer, refusals, embedded, hello };
}

const CALL = { kind: 'rpc', featureId: FEATURE, fn: 'getData', method: 'POST', body: '{"args":[1]}' };

describe('embedFeature', () => {
  it("forwards a call to its feature's route with the host's headers; the frame gets status, request id and body only", async () => {
    const relay = embed({ headers: () => ({ authorization: 'Bearer host-token' }) });
    expect(relay.frame.posted[0]!.data).toEqual({ type: RELAY_PORT, seq: 1, timeoutMs: 16_000 });
    relay.port.postMessage({ id: 7, ...CALL });
    expect(await relay.answer(1)).toEqual({
      id: 7,
      status: 200,
      requestId: 'req-1',
      body: `{"url":"/rpc/${FEATURE}/getData"}`,
    });
    expect(received).toMatchObject([{ method: 'POST', url: `/rpc/${FEATURE}/getData`, body: '{"args":[1]}' }]);
    expect(received[0]!.headers).toMatchObject({
      authorization: 'Bearer host-token',
      'content-type': 'application/json',
    });
    relay.port.postMessage({ id: 8, kind: 'storage', featureId: FEATURE, method: 'PUT', body: '{"theme":"dark"}' });
    expect(await relay.answer(2)).toMatchObject({ id: 8, status: 200, body: `{"url":"/_storage/${FEATURE}"}` });
    relay.embedded.close();
  });

  it('refuses, answers and logs every message that is not one call of its feature; none reaches the host', async () => {
    const relay = embed({ maxMessageBytes: 100 });
    const hostile: Array<[unknown, number, Refusal['reason']]> = [
      [{ ...CALL, featureId: 'feature-other' }, 403, 'other-feature'],
      [{ ...CALL, featureId: `${FEATURE}/../feature-other` }, 403, 'other-feature'],
      [{ ...CALL, fn: '..' }, 400, 'malformed'],
      [{ ...CALL, fn: 'a/../../_admin' }, 400, 'malformed'],
      [{ ...CALL, fn: '' }, 400, 'malformed'],
      [{ ...CALL, fn: 'x'.repeat(200) }, 400, 'malformed'],
      [{ ...CALL, method: 'GET' }, 400, 'malformed'],
      [{ ...CALL, kind: 'admin' }, 400, 'malformed'],
      [{ kind: 'storage', featureId: FEATURE, method: 'DELETE' }, 400, 'malformed'],
      [{ ...CALL, body: { args: [] } }, 400, 'malformed'],
      [{ ...CALL, featureId: 42 }, 400, 'malformed'],
      [{ ...CALL, body: `{"args":["${'é'.repeat(60)}"]}` }, 413, 'too-large'],
    ];
    hostile.forEach(([message], i) => relay.port.postMessage({ ...(message as object), id: i + 1 }));
    for (const [i, [, status]] of hostile.entries()) {
      const answer = await relay.answer(i + 1);
      expect([answer.id, answer.status, answer.requestId]).toEqual([i + 1, status, null]);
      expect(JSON.parse(answer.body as string).error).toMatch(/^(Forbidden|Malformed RPC request|Payload too large): /);
    }
    // Without an id there is nothing to answer: refused and logged only.
    relay.port.postMessage('hello?');
    relay.port.postMessage({ ...CALL, id: 'one' });
    await vi.waitFor(() => expect(relay.refusals).toHaveLength(hostile.length + 2));
    expect(relay.refusals.map((r) => r.reason)).toEqual([
      ...hostile.map(([, , reason]) => reason),
      'malformed',
      'malformed',
    ]);
    // One by one up to ten; past that only a count now and then (logging is what a flood costs most).
    expect(warn).toHaveBeenCalledTimes(Math.min(hostile.length + 2, 10));
    expect(String(warn.mock.calls[0]![0])).toMatch(
      /^favn relay \(feature-relay-unit\): refused other-feature: the frame of "feature-relay-unit" called feature "feature-other"/,
    );
    expect(received).toEqual([]);
    relay.embedded.close();
  });

  it('refuses calls past maxInFlight with 429 until one finishes', async () => {
    holdCalls = true;
    const relay = embed({ maxInFlight: 1 });
    relay.port.postMessage({ id: 1, ...CALL });
    await vi.waitFor(() => expect(held).toHaveLength(1));
    relay.port.postMessage({ id: 2, ...CALL });
    expect(await relay.answer(1)).toMatchObject({ id: 2, status: 429 });
    expect(relay.refusals.map((r) => r.reason)).toEqual(['too-many']);
    held.shift()!();
    expect(await relay.answer(2)).toMatchObject({ id: 1, status: 200 });
    holdCalls = false;
    relay.port.postMessage({ id: 3, ...CALL });
    expect(await relay.answer(3)).toMatchObject({ id: 3, status: 200 });
    relay.embedded.close();
  });

  it('answers status 0 when the host does not answer within timeoutMs', async () => {
    holdCalls = true;
    const relay = embed({ timeoutMs: 100 });
    relay.port.postMessage({ id: 1, ...CALL });
    expect(await relay.answer(1)).toEqual({
      id: 1,
      status: 0,
      requestId: null,
      body: 'the host did not answer within 100 ms',
    });
    held.forEach((release) => release());
    relay.embedded.close();
  });

  it('answers a hello only from its iframe, never uses an offered port, and replaces the port on a new hello', async () => {
    const relay = embed();
    const stranger = frameWindow();
    relay.hello(stranger);
    expect(stranger.posted).toEqual([]);
    const offered = new MessageChannel();
    const seen: unknown[] = [];
    offered.port2.onmessage = (event) => seen.push(event.data);
    relay.hello(relay.frame, [offered.port1]);
    offered.port2.postMessage({ id: 1, ...CALL });
    expect(relay.refusals.map((r) => r.reason)).toEqual(['other-frame', 'forged-port']);
    expect(relay.frame.posted).toHaveLength(1);

    // A reload: the new document says hello and gets a new port; the old one is closed.
    relay.hello();
    expect(relay.frame.posted).toHaveLength(2);
    const fresh = relay.frame.posted[1]!.port!;
    const answers: unknown[] = [];
    fresh.onmessage = (event) => answers.push(event.data);
    relay.port.postMessage({ id: 1, ...CALL });
    fresh.postMessage({ id: 2, ...CALL });
    await vi.waitFor(() => expect(answers).toMatchObject([{ id: 2, status: 200 }]));
    await new Promise((r) => setTimeout(r, 100));
    expect(relay.answers).toEqual([]);
    expect(seen).toEqual([]);
    expect(received).toHaveLength(1);
    relay.embedded.close();
    fresh.close();
    offered.port2.close();
  });

  it('answers only a document it loaded: a hello without the key of its URL gets no port', async () => {
    const frame = frameWindow();
    const refusals: Refusal[] = [];
    const iframe = { contentWindow: frame, src: '' } as unknown as HTMLIFrameElement;
    const embedded = embedFeature({
      iframe,
      featureId: FEATURE,
      baseUrl,
      src: '/page/',
      onRefused: (r) => refusals.push(r),
    });
    expect(iframe.src).toMatch(/^\/page\/#favn-relay=[0-9a-f]{32}$/);
    post({ type: RELAY_HELLO, key: 'f'.repeat(32), seq: 1 }, frame);
    post({ type: RELAY_HELLO, seq: 2 }, frame);
    post(RELAY_HELLO, frame);
    expect(frame.posted).toEqual([]);
    expect(refusals.map((r) => r.reason)).toEqual(['other-frame', 'other-frame', 'other-frame']);
    post({ type: RELAY_HELLO, key: /favn-relay=(\w+)/.exec(iframe.src)![1], seq: 3 }, frame);
    expect(frame.posted).toMatchObject([{ data: { type: RELAY_PORT, seq: 3 } }]);
    embedded.close();
  });

  it("stays silent about another relay's frame, and closes the port of a frame that floods it", async () => {
    const relay = embed();
    const second = embed();
    second.hello(second.frame);
    expect(relay.refusals).toEqual([]);
    for (let i = 0; i < 10_000; i++) relay.port.postMessage({ id: i, kind: 'nope' });
    await vi.waitFor(() => expect(relay.refusals).toHaveLength(10_000), { timeout: 10_000 });
    const before = relay.answers.length;
    relay.port.postMessage({ id: 1, ...CALL });
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(relay.answers.length).toBe(before);
    relay.embedded.close();
    second.embedded.close();
  });
});
