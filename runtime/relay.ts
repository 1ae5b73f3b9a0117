/**
 * Both ends of the relay: a feature page in a sandboxed iframe calls its server functions through
 * the host page that embeds it, over a `MessageChannel` port the host hands it. `embedFeature` is
 * the host end (`@favn/vite-plugin-server-fns/relay`); `connectToHost` is the frame end, which the
 * browser client starts on its own when its page runs in a frame.
 *
 * The handshake: the host loads the frame's page with a fresh random key in its URL fragment
 * (`#favn-relay=<key>`); the frame posts `{ type: RELAY_HELLO, key, seq }` to `window.parent`; the
 * host checks the message came from the iframe it embeds and carries its key, and answers by
 * transferring a fresh port. A document the host did not load (a page the frame navigated to, the
 * previous feature's page still alive during a switch) does not know the key and gets nothing. A
 * reload keeps the URL, sends a new hello and gets a new port; the old one is closed.
 */
import {
  CONTRACT_ERRORS,
  DEFAULT_BODY_LIMIT,
  DEFAULT_TIMEOUT_MS,
  LIVE_HEADER,
  LIVE_PREFIX,
  REQUEST_ID_HEADER,
  rpcPath,
  STORAGE_PREFIX,
} from './protocol.js';
import { openLiveSocket, socketUrl } from './live-client.js';

/** `type` of what the frame posts to its parent to ask for a port (with the key of its URL). */
export const RELAY_HELLO = 'favn-relay:hello';

/** The URL fragment parameter the host puts the frame's key in. */
export const RELAY_KEY_PARAM = 'favn-relay';

/** `type` of the host's answer to a hello; the port rides in `event.ports`. */
export const RELAY_PORT = 'favn-relay:port';

/** One call from the frame, posted on the port. The host builds the URL; the frame never names one. */
export interface RelayCall {
  /** A call, the settings document, or live queries (`GET`: the push stream, `POST`: unsubscribe). */
  kind: 'rpc' | 'storage' | 'live';
  featureId: string;
  /** The function, for `kind: 'rpc'`. */
  fn?: string;
  /** `POST` for rpc; `GET` or `PUT` for storage; `GET` or `POST` for live. */
  method: string;
  /** The JSON body, as sent over HTTP. */
  body?: string;
  /** `x-favn-live` of a subscribing call (rpc, storage GET): `{connection}.{subId}`. */
  live?: string;
}

/** The host's answer: the HTTP status, request id and body text; status 0 when no response came. */
export interface RelayAnswer {
  status: number;
  requestId: string | null;
  /** The response text, or for status 0 why no response came. */
  body: string;
  /** The `x-favn-live` answer of a subscribing call. */
  live?: string | null;
}

/** Why the host refused a message. */
export type RefusalReason = 'other-frame' | 'forged-port' | 'other-feature' | 'too-large' | 'too-many' | 'malformed';

export interface Refusal {
  reason: RefusalReason;
  featureId: string;
  message: string;
}

export interface EmbedOptions {
  /** The iframe the feature runs in; use `sandbox="allow-scripts"` (no `allow-same-origin`). */
  iframe: HTMLIFrameElement;
  /**
   * The feature's page: the relay loads it into the iframe with this embedding's key. Only a
   * document loaded from it is answered. (Or load `embedded.url(page)` into the iframe yourself.)
   */
  src?: string;
  /** The one feature this frame may call. */
  featureId: string;
  /** Origin or path prefix of `/rpc` and `/_storage`. Default: the host page's origin. */
  baseUrl?: string;
  /** The host's own headers for each forwarded call, e.g. its `authorization`. Never shown to the frame. */
  headers?: Record<string, string> | (() => Record<string, string> | Promise<Record<string, string>>);
  /** Cookies of forwarded calls, as `fetch` takes it. Default `same-origin`. */
  credentials?: RequestCredentials;
  /** Largest body a call may carry, in bytes. Default 1 MiB (the host's body limit). */
  maxMessageBytes?: number;
  /** Calls of this frame under way at once; more are refused with 429. Default 16. */
  maxInFlight?: number;
  /** A forwarded call without an answer after this long fails as a network error. Default 15 s. */
  timeoutMs?: number;
  /** Called for each refused message (it is also logged with `console.warn`). */
  onRefused?: (refusal: Refusal) => void;
  /** The fetch to forward with. Default: the global one. */
  fetch?: typeof fetch;
}

export interface EmbeddedFeature {
  /** Stops relaying: removes the listener and closes the frame's port. */
  close(): void;
  /** `page` with this embedding's key, to load into the iframe when `src` was not given. */
  url(page: string): string;
}

const DEFAULT_MAX_IN_FLIGHT = 16;
const DEFAULT_RELAY_TIMEOUT_MS = DEFAULT_TIMEOUT_MS + 5_000;
/** The frame waits this much longer than the host, so the host's own timeout answer arrives first. */
const FRAME_TIMEOUT_MARGIN_MS = 1_000;
/** Refusals logged one by one; after that a summary every `REFUSALS_SUMMARY`, and the port closes at `REFUSALS_CLOSE`. */
const REFUSALS_LOGGED = 10;
const REFUSALS_SUMMARY = 1000;
const REFUSALS_CLOSE = 10_000;
/** A function name as the host declares them: a JavaScript identifier, never `.` or `..` of a path. */
const FN_NAME = /^[A-Za-z_$][\w$]{0,127}$/;
/** `x-favn-live` of a subscribing call. */
const LIVE_ID = /^[A-Za-z0-9_-]{1,64}\.[A-Za-z0-9_-]{1,64}$/;
/** Push streams (live queries) one frame may hold open at once. */
const MAX_STREAMS = 2;

/**
 * Embeds a feature: relays the calls of the page in `iframe` to `/rpc/{featureId}/...` and
 * `/_storage/{featureId}` with the host page's own credentials, and answers on the frame's port.
 * Give it the page (`src`): only a document loaded from that URL by this call gets a port. To show
 * another feature, use a new iframe element (a document of the old one can outlive a switch).
 *
 * @example
 * const iframe = document.querySelector('iframe#feature')
 * embedFeature({ iframe, featureId: 'feature-rules', src: '/feature-rules/', headers: () => ({ authorization: `Bearer ${token()}` }) })
 */
export function embedFeature(options: EmbedOptions): EmbeddedFeature {
  const { iframe, featureId } = options;
  const timeoutMs = options.timeoutMs ?? DEFAULT_RELAY_TIMEOUT_MS;
  const key = randomKey();
  let port: MessagePort | null = null;
  let refusals = 0;
  const refuse = (reason: RefusalReason, message: string) => {
    refusals++;
    // Logging is what costs a flooded page most: one by one at first, then a count now and then.
    if (refusals <= REFUSALS_LOGGED) console.warn(`favn relay (${featureId}): refused ${reason}: ${message}`);
    else if (refusals % REFUSALS_SUMMARY === 0) console.warn(`favn relay (${featureId}): ${refusals} messages refused`);
    options.onRefused?.({ reason, featureId, message });
    if (refusals === REFUSALS_CLOSE && port) {
      console.warn(`favn relay (${featureId}): the frame sent ${refusals} refused messages; its port is closed`);
      port.close();
      port = null;
    }
  };
  const { forward, endStreams } = createForwarder(options, timeoutMs, refuse);
  const onWindowMessage = (event: MessageEvent) => {
    const data: unknown = event.data;
    const isHello = data === RELAY_HELLO || (isRecord(data) && data.type === RELAY_HELLO);
    const ours = isHello || (isRecord(data) && data.type === RELAY_PORT);
    const fromFrame = event.source === iframe.contentWindow && event.source !== null;
    if (!ours && !(fromFrame && event.ports.length > 0)) return;
    // Another relay of this page answers its own frame: its hellos are not ours to judge.
    if (!fromFrame && relayedElsewhere(event.source, iframe)) return;
    if (event.ports.length > 0) {
      // The relay only listens on ports it made itself; one from the frame or elsewhere gets nothing.
      for (const forged of event.ports) forged.close();
      return refuse('forged-port', 'a port the host did not create was offered; it is closed unanswered');
    }
    if (!isHello) return;
    if (!fromFrame) return refuse('other-frame', 'a hello from a window that is not the embedded iframe');
    if (!isRecord(data) || data.key !== key) {
      return refuse('other-frame', 'a hello from a document this relay did not load (it lacks the key of its URL)');
    }
    port?.close();
    endStreams();
    const channel = new MessageChannel();
    port = channel.port1;
    const mine = port;
    mine.onmessage = (message) => forward(message.data, mine);
    // The frame's origin is opaque ("null"), so no narrower target exists; the port is all it gets.
    const answer = { type: RELAY_PORT, seq: data.seq, timeoutMs: timeoutMs + FRAME_TIMEOUT_MARGIN_MS };
    event.source!.postMessage(answer, { targetOrigin: '*', transfer: [channel.port2] });
  };
  window.addEventListener('message', onWindowMessage);
  RELAYED_FRAMES.add(iframe);
  const url = (page: string) => `${page}${page.includes('#') ? '&' : '#'}${RELAY_KEY_PARAM}=${key}`;
  if (options.src !== undefined) iframe.src = url(options.src);
  return {
    close() {
      window.removeEventListener('message', onWindowMessage);
      RELAYED_FRAMES.delete(iframe);
      port?.close();
      port = null;
      endStreams();
    },
    url,
  };
}

/** The iframes relays of this page embed (several features on one page). */
const RELAYED_FRAMES = new Set<HTMLIFrameElement>();

function relayedElsewhere(source: MessageEventSource | null, mine: HTMLIFrameElement): boolean {
  for (const frame of RELAYED_FRAMES) if (frame !== mine && frame.contentWindow === source) return true;
  return false;
}

/** 128 random bits, as hex. */
function randomKey(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** The handler of one port message: checks it, forwards it, posts the answer on that port. */
function createForwarder(
  options: EmbedOptions,
  timeoutMs: number,
  refuse: (reason: RefusalReason, message: string) => void,
): { forward: (data: unknown, port: MessagePort) => void; endStreams: () => void } {
  const { featureId } = options;
  const maxBytes = options.maxMessageBytes ?? DEFAULT_BODY_LIMIT;
  const maxInFlight = options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
  const base = options.baseUrl ?? '';
  let inFlight = 0;
  /** Open push streams by message id: the frame cancels one by its id. */
  const streams = new Map<number, AbortController>();
  function forward(data: unknown, port: MessagePort): void {
    const id = isRecord(data) && Number.isSafeInteger(data.id) ? (data.id as number) : null;
    if (id !== null && (data as Record<string, unknown>).cancel === true) {
      streams.get(id)?.abort();
      streams.delete(id);
      return;
    }
    const answer = (a: RelayAnswer) => port.postMessage({ id, ...a });
    const refuseWith = (reason: RefusalReason, status: number, text: string, detail: string) => {
      refuse(reason, detail);
      if (id !== null) answer({ status, requestId: null, body: JSON.stringify({ error: `${text}: ${detail}` }) });
    };
    const call = id === null ? null : parseCall(data as Record<string, unknown>);
    if (typeof call === 'string' || call === null) {
      return refuseWith('malformed', 400, CONTRACT_ERRORS.malformed.text, call ?? 'a message without a numeric id');
    }
    if (call.featureId !== featureId) {
      const detail = `the frame of "${featureId}" called feature "${call.featureId.slice(0, 100)}"`;
      return refuseWith('other-feature', 403, 'Forbidden', detail);
    }
    if (call.body !== undefined && byteLength(call.body, maxBytes) > maxBytes) {
      return refuseWith('too-large', 413, CONTRACT_ERRORS.payloadTooLarge.text, `the body exceeds ${maxBytes} bytes`);
    }
    const live = `${LIVE_PREFIX}/${encodeURIComponent(featureId)}`;
    if (call.kind === 'live' && call.method === 'GET') {
      if (streams.size >= MAX_STREAMS) {
        return refuseWith('too-many', 429, CONTRACT_ERRORS.rateLimited.text, `more than ${MAX_STREAMS} push streams`);
      }
      const abort = new AbortController();
      streams.set(id!, abort);
      void openStream(options, `${base}${live}`, abort.signal, (message) =>
        port.postMessage({ id, ...message }),
      ).finally(() => streams.delete(id!));
      return;
    }
    if (inFlight >= maxInFlight) {
      return refuseWith('too-many', 429, CONTRACT_ERRORS.rateLimited.text, `more than ${maxInFlight} calls in flight`);
    }
    inFlight++;
    const path =
      call.kind === 'rpc'
        ? rpcPath(featureId, call.fn!)
        : call.kind === 'live'
          ? `${live}/unsubscribe`
          : `${STORAGE_PREFIX}/${encodeURIComponent(featureId)}`;
    void send(options, `${base}${path}`, call, timeoutMs)
      .then(answer)
      .finally(() => inFlight--);
  }
  const endStreams = () => {
    for (const abort of streams.values()) abort.abort();
    streams.clear();
  };
  return { forward, endStreams };
}

/**
 * Opens the feature's push stream with the host's credentials and posts what it says to the
 * frame: first `{status, requestId, body, stream: true}`, then `{chunk}` for each piece, then
 * `{end: true}`. Never rejects.
 */
async function openStream(
  options: EmbedOptions,
  url: string,
  signal: AbortSignal,
  post: (message: Record<string, unknown>) => void,
): Promise<void> {
  try {
    const extra = typeof options.headers === 'function' ? await options.headers() : options.headers;
    // A WebSocket takes none of the page's six connections per origin (a page may embed several
    // features); server-sent events over fetch when it cannot open (or cookies are to be omitted).
    const socket = options.credentials === 'omit' ? null : socketUrl(url);
    const opened = socket ? await openLiveSocket(socket, extra ?? {}, signal).catch(() => null) : null;
    const response =
      opened ??
      (await (options.fetch ?? globalThis.fetch)(url, {
        headers: { accept: 'text/event-stream', ...extra },
        credentials: options.credentials ?? 'same-origin',
        signal,
      }));
    const requestId = response.headers.get(REQUEST_ID_HEADER);
    if (!response.ok || !response.body) {
      return post({ status: response.status, requestId, body: await response.text(), stream: true, end: true });
    }
    post({ status: response.status, requestId, body: '', stream: true });
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      post({ chunk: value });
    }
    post({ end: true });
  } catch (error) {
    post({ status: 0, requestId: null, body: messageOf(error), stream: true, end: true });
  }
}

/** Forwards one checked call with the host's credentials; never rejects. */
async function send(options: EmbedOptions, url: string, call: RelayCall, timeoutMs: number): Promise<RelayAnswer> {
  try {
    const extra = typeof options.headers === 'function' ? await options.headers() : options.headers;
    const headers: Record<string, string> = { 'content-type': 'application/json', ...extra };
    if (call.live) headers[LIVE_HEADER] = call.live;
    const response = await (options.fetch ?? globalThis.fetch)(url, {
      method: call.method,
      headers,
      body: call.body,
      credentials: options.credentials ?? 'same-origin',
      signal: AbortSignal.timeout(timeoutMs),
    });
    const body = await response.text();
    const requestId = response.headers.get(REQUEST_ID_HEADER);
    const answer: RelayAnswer = { status: response.status, requestId, body };
    if (call.live) answer.live = response.headers.get(LIVE_HEADER);
    return answer;
  } catch (error) {
    const timedOut = error instanceof DOMException && error.name === 'TimeoutError';
    const why = timedOut ? `the host did not answer within ${timeoutMs} ms` : messageOf(error);
    return { status: 0, requestId: null, body: why };
  }
}

/** The call in a port message, or what is wrong with it. */
function parseCall(data: Record<string, unknown>): RelayCall | string {
  const { kind, featureId, fn, method, body, live } = data;
  if (typeof featureId !== 'string') return 'featureId is not a string';
  if (body !== undefined && typeof body !== 'string') return 'body is not a string';
  if (live !== undefined && (typeof live !== 'string' || !LIVE_ID.test(live))) return 'live is not {connection}.{id}';
  const subscribing = live === undefined ? {} : { live };
  if (kind === 'rpc') {
    if (method !== 'POST') return 'a call is a POST';
    if (typeof fn !== 'string' || !FN_NAME.test(fn)) return 'fn is not a function name';
    return { kind, featureId, fn, method, body, ...subscribing };
  }
  if (kind === 'storage') {
    if (method !== 'GET' && method !== 'PUT') return 'the settings document takes GET or PUT';
    if (method === 'PUT') return { kind, featureId, method, body };
    return { kind, featureId, method, ...subscribing };
  }
  if (kind === 'live') {
    if (method !== 'GET' && method !== 'POST') return 'live queries take GET (the stream) or POST (unsubscribe)';
    return method === 'GET' ? { kind, featureId, method } : { kind, featureId, method, body };
  }
  return 'kind is neither "rpc", "storage" nor "live"';
}

/** UTF-8 length of `text`, counted only when it could exceed `max` (a character is at most 3 bytes). */
function byteLength(text: string, max: number): number {
  if (text.length > max) return text.length; // every UTF-16 unit is at least one byte: too large already
  return text.length * 3 <= max ? text.length : new TextEncoder().encode(text).length;
}

/** The frame end: sends calls to the embedding host once it has handed over a port. */
export interface FrameEnd {
  /** Sends one call; resolves with the host's answer (status 0 when none came). Never rejects. */
  send(call: RelayCall): Promise<RelayAnswer>;
  /** Opens the feature's push stream through the host, as a `fetch` response; `signal` ends it. */
  open(featureId: string, signal: AbortSignal): Promise<Response>;
}

/** How long calls wait for the host's port before failing as network errors. */
const HANDSHAKE_WAIT_MS = 10_000;
/** Hellos go out at 0 ms, then after 50, 100, 200... ms until a port arrives or the wait is over. */
const FIRST_HELLO_RETRY_MS = 50;

/**
 * The frame end of the relay, when this page runs in a sandboxed frame with an opaque origin;
 * `null` otherwise (decided once). A page with an origin of its own keeps calling over `fetch`
 * even when framed: a parent it does not know must not receive its calls. Starts the handshake
 * at once. Internal: the browser client calls it when it loads.
 *
 * @example
 * const frame = connectToHost() // null at top level
 */
export function connectToHost(): FrameEnd | null {
  if (typeof window === 'undefined' || window.parent === window || globalThis.origin !== 'null') return null;
  // The key the host put in this document's URL; read now, before the page's own code runs.
  const key = new RegExp(`[#&]${RELAY_KEY_PARAM}=([0-9a-f]{32})`).exec(location.hash)?.[1] ?? null;
  let helloSeq = 0;
  let port: MessagePort | null = null;
  let callTimeoutMs = DEFAULT_RELAY_TIMEOUT_MS + FRAME_TIMEOUT_MARGIN_MS;
  let gaveUp = false;
  let lastId = 0;
  const waiting: Array<() => void> = [];
  const pending = new Map<number, { resolve: (a: RelayAnswer) => void; timer: ReturnType<typeof setTimeout> }>();
  /** Open push streams by id: where their pieces go. */
  const streams = new Map<number, ReadableStreamDefaultController<string>>();
  const flush = () => waiting.splice(0).forEach((go) => go());

  window.addEventListener('message', (event) => {
    if (event.source !== window.parent || event.ports.length !== 1) return;
    if (!isRecord(event.data) || event.data.type !== RELAY_PORT) return;
    // A port for an earlier hello is one the host has already replaced: wait for the latest.
    if (event.data.seq !== helloSeq) return void event.ports[0]!.close();
    port?.close();
    port = event.ports[0]!;
    port.onmessage = (message) => settle(message.data);
    const announced = event.data.timeoutMs;
    if (typeof announced === 'number' && announced >= 50 && announced <= 600_000) callTimeoutMs = announced;
    flush();
  });
  const hello = (retryMs: number, elapsedMs: number) => {
    if (port) return;
    window.parent.postMessage({ type: RELAY_HELLO, key, seq: ++helloSeq }, '*');
    if (elapsedMs >= HANDSHAKE_WAIT_MS) {
      gaveUp = true;
      return flush();
    }
    setTimeout(() => hello(retryMs * 2, elapsedMs + retryMs), Math.min(retryMs, HANDSHAKE_WAIT_MS - elapsedMs));
  };
  hello(FIRST_HELLO_RETRY_MS, 0);

  function settle(data: unknown): void {
    if (isRecord(data) && typeof data.id === 'number' && streams.has(data.id) && !('status' in data)) {
      const stream = streams.get(data.id)!;
      if (typeof data.chunk === 'string') stream.enqueue(data.chunk);
      if (data.end === true) {
        streams.delete(data.id);
        stream.close();
      }
      return;
    }
    if (!isRecord(data) || typeof data.id !== 'number' || typeof data.status !== 'number') return;
    const entry = pending.get(data.id);
    if (!entry) return;
    pending.delete(data.id);
    clearTimeout(entry.timer);
    const requestId = typeof data.requestId === 'string' ? data.requestId : null;
    const status = data.status;
    if (status !== 0 && !(Number.isInteger(status) && status >= 100 && status <= 599)) {
      return entry.resolve({ status: 0, requestId: null, body: `the embedding host answered with status ${status}` });
    }
    const live = typeof data.live === 'string' ? data.live : null;
    entry.resolve({ status, requestId, body: typeof data.body === 'string' ? data.body : '', live });
  }

  function post(call: RelayCall, to: MessagePort, id = ++lastId): Promise<RelayAnswer> {
    return new Promise((resolve) => {
      const timeoutMs = callTimeoutMs;
      const timer = setTimeout(() => {
        pending.delete(id);
        resolve({ status: 0, requestId: null, body: `the embedding host did not answer within ${timeoutMs} ms` });
      }, timeoutMs);
      pending.set(id, { resolve, timer });
      to.postMessage({ id, ...call });
    });
  }

  const noHost = (): RelayAnswer => ({
    status: 0,
    requestId: null,
    body: 'no embedding host handed this sandboxed frame a relay port',
  });

  function send(call: RelayCall, id?: number): Promise<RelayAnswer> {
    if (port) return post(call, port, id);
    if (gaveUp) return Promise.resolve(noHost());
    return new Promise((resolve) => waiting.push(() => resolve(port ? post(call, port, id) : noHost())));
  }

  return {
    send: (call) => send(call),
    async open(featureId, signal) {
      const id = ++lastId;
      let controller!: ReadableStreamDefaultController<string>;
      const body = new ReadableStream<string>({ start: (c) => void (controller = c) });
      streams.set(id, controller);
      const stop = () => {
        if (!streams.delete(id)) return;
        port?.postMessage({ id, cancel: true });
        controller.error(new DOMException('The stream was closed', 'AbortError'));
      };
      signal.addEventListener('abort', stop, { once: true });
      const answer = await send({ kind: 'live', featureId, method: 'GET' }, id);
      if (answer.status === 0) {
        streams.delete(id);
        throw new TypeError(`Network error opening live queries: ${answer.body}`);
      }
      if (answer.status !== 200) {
        streams.delete(id);
        return new Response(answer.body, { status: answer.status });
      }
      return new Response(body.pipeThrough(new TextEncoderStream()), { status: 200 });
    },
  };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
