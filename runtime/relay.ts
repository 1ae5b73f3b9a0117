/**
 * Both ends of the relay: a feature page in a sandboxed iframe calls its server functions through
 * the host page that embeds it, over a `MessageChannel` port the host hands it. `embedFeature` is
 * the host end (`@favn/vite-plugin-server-fns/relay`); `connectToHost` is the frame end, which the
 * browser client starts on its own when its page runs in a frame.
 *
 * The handshake: the frame posts `RELAY_HELLO` (a bare string, no data) to `window.parent`; the
 * host checks the message came from the iframe it embeds and answers by transferring a fresh port.
 * A reload of the frame sends a new hello and gets a new port; the old one is closed.
 */
import {
  CONTRACT_ERRORS,
  DEFAULT_BODY_LIMIT,
  DEFAULT_TIMEOUT_MS,
  REQUEST_ID_HEADER,
  rpcPath,
  STORAGE_PREFIX,
} from './protocol.js';

/** What the frame posts to its parent to ask for a port. Carries nothing else. */
export const RELAY_HELLO = 'favn-relay:hello';

/** `type` of the host's answer to a hello; the port rides in `event.ports`. */
export const RELAY_PORT = 'favn-relay:port';

/** One call from the frame, posted on the port. The host builds the URL; the frame never names one. */
export interface RelayCall {
  kind: 'rpc' | 'storage';
  featureId: string;
  /** The function, for `kind: 'rpc'`. */
  fn?: string;
  /** `POST` for rpc; `GET` or `PUT` for storage. */
  method: string;
  /** The JSON body, as sent over HTTP. */
  body?: string;
}

/** The host's answer: the HTTP status, request id and body text; status 0 when no response came. */
export interface RelayAnswer {
  status: number;
  requestId: string | null;
  /** The response text, or for status 0 why no response came. */
  body: string;
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
}

const DEFAULT_MAX_IN_FLIGHT = 16;
const DEFAULT_RELAY_TIMEOUT_MS = DEFAULT_TIMEOUT_MS + 5_000;
/** The frame waits this much longer than the host, so the host's own timeout answer arrives first. */
const FRAME_TIMEOUT_MARGIN_MS = 1_000;
/** A function name as the host declares them: a JavaScript identifier, never `.` or `..` of a path. */
const FN_NAME = /^[A-Za-z_$][\w$]{0,127}$/;

/**
 * Embeds a feature: relays the calls of the page in `iframe` to `/rpc/{featureId}/...` and
 * `/_storage/{featureId}` with the host page's own credentials, and answers on the frame's port.
 * Call it before the iframe loads (or at any time: the frame repeats its hello for a while).
 *
 * @example
 * const iframe = document.querySelector('iframe#feature')
 * const embedded = embedFeature({ iframe, featureId: 'feature-rules', headers: () => ({ authorization: `Bearer ${token()}` }) })
 * iframe.src = '/feature-rules/'
 */
export function embedFeature(options: EmbedOptions): EmbeddedFeature {
  const { iframe, featureId } = options;
  const timeoutMs = options.timeoutMs ?? DEFAULT_RELAY_TIMEOUT_MS;
  let port: MessagePort | null = null;
  const refuse = (reason: RefusalReason, message: string) => {
    const refusal = { reason, featureId, message };
    console.warn(`favn relay (${featureId}): refused ${reason}: ${message}`);
    options.onRefused?.(refusal);
  };
  const forward = createForwarder(options, timeoutMs, refuse);
  const onWindowMessage = (event: MessageEvent) => {
    const ours = event.data === RELAY_HELLO || (isRecord(event.data) && event.data.type === RELAY_PORT);
    if (event.ports.length > 0 && (ours || event.source === iframe.contentWindow)) {
      // The relay only listens on ports it made itself; one from the frame or elsewhere gets nothing.
      for (const forged of event.ports) forged.close();
      return refuse('forged-port', 'a port the host did not create was offered; it is closed unanswered');
    }
    if (!ours) return;
    if (event.source !== iframe.contentWindow || event.source === null) {
      return refuse('other-frame', 'a hello from a window that is not the embedded iframe');
    }
    port?.close();
    const channel = new MessageChannel();
    port = channel.port1;
    const mine = port;
    mine.onmessage = (message) => forward(message.data, mine);
    // The frame's origin is opaque ("null"), so no narrower target exists; the port is all it gets.
    const hello = { type: RELAY_PORT, timeoutMs: timeoutMs + FRAME_TIMEOUT_MARGIN_MS };
    event.source.postMessage(hello, { targetOrigin: '*', transfer: [channel.port2] });
  };
  window.addEventListener('message', onWindowMessage);
  return {
    close() {
      window.removeEventListener('message', onWindowMessage);
      port?.close();
      port = null;
    },
  };
}

/** The handler of one port message: checks it, forwards it, posts the answer on that port. */
function createForwarder(
  options: EmbedOptions,
  timeoutMs: number,
  refuse: (reason: RefusalReason, message: string) => void,
): (data: unknown, port: MessagePort) => void {
  const { featureId } = options;
  const maxBytes = options.maxMessageBytes ?? DEFAULT_BODY_LIMIT;
  const maxInFlight = options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
  const base = options.baseUrl ?? '';
  let inFlight = 0;
  return function forward(data, port) {
    const id = isRecord(data) && Number.isSafeInteger(data.id) ? (data.id as number) : null;
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
    if (inFlight >= maxInFlight) {
      return refuseWith('too-many', 429, CONTRACT_ERRORS.rateLimited.text, `more than ${maxInFlight} calls in flight`);
    }
    inFlight++;
    const path =
      call.kind === 'rpc' ? rpcPath(featureId, call.fn!) : `${STORAGE_PREFIX}/${encodeURIComponent(featureId)}`;
    void send(options, `${base}${path}`, call, timeoutMs)
      .then(answer)
      .finally(() => inFlight--);
  };
}

/** Forwards one checked call with the host's credentials; never rejects. */
async function send(options: EmbedOptions, url: string, call: RelayCall, timeoutMs: number): Promise<RelayAnswer> {
  try {
    const extra = typeof options.headers === 'function' ? await options.headers() : options.headers;
    const response = await (options.fetch ?? globalThis.fetch)(url, {
      method: call.method,
      headers: { 'content-type': 'application/json', ...extra },
      body: call.body,
      credentials: options.credentials ?? 'same-origin',
      signal: AbortSignal.timeout(timeoutMs),
    });
    const body = await response.text();
    return { status: response.status, requestId: response.headers.get(REQUEST_ID_HEADER), body };
  } catch (error) {
    const timedOut = error instanceof DOMException && error.name === 'TimeoutError';
    const why = timedOut ? `the host did not answer within ${timeoutMs} ms` : messageOf(error);
    return { status: 0, requestId: null, body: why };
  }
}

/** The call in a port message, or what is wrong with it. */
function parseCall(data: Record<string, unknown>): RelayCall | string {
  const { kind, featureId, fn, method, body } = data;
  if (typeof featureId !== 'string') return 'featureId is not a string';
  if (body !== undefined && typeof body !== 'string') return 'body is not a string';
  if (kind === 'rpc') {
    if (method !== 'POST') return 'a call is a POST';
    if (typeof fn !== 'string' || !FN_NAME.test(fn)) return 'fn is not a function name';
    return { kind, featureId, fn, method, body };
  }
  if (kind === 'storage') {
    if (method !== 'GET' && method !== 'PUT') return 'the settings document takes GET or PUT';
    return { kind, featureId, method, body: method === 'GET' ? undefined : body };
  }
  return 'kind is neither "rpc" nor "storage"';
}

/** UTF-8 length of `text`, counted only when it could exceed `max` (a character is at most 3 bytes). */
function byteLength(text: string, max: number): number {
  return text.length * 3 <= max ? text.length : new TextEncoder().encode(text).length;
}

/** The frame end: sends calls to the embedding host once it has handed over a port. */
export interface FrameEnd {
  /** Sends one call; resolves with the host's answer (status 0 when none came). Never rejects. */
  send(call: RelayCall): Promise<RelayAnswer>;
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
  let port: MessagePort | null = null;
  let callTimeoutMs = DEFAULT_RELAY_TIMEOUT_MS + FRAME_TIMEOUT_MARGIN_MS;
  let gaveUp = false;
  let lastId = 0;
  const waiting: Array<() => void> = [];
  const pending = new Map<number, { resolve: (a: RelayAnswer) => void; timer: ReturnType<typeof setTimeout> }>();
  const flush = () => waiting.splice(0).forEach((go) => go());

  window.addEventListener('message', (event) => {
    if (event.source !== window.parent || event.ports.length !== 1) return;
    if (!isRecord(event.data) || event.data.type !== RELAY_PORT) return;
    port?.close();
    port = event.ports[0]!;
    port.onmessage = (message) => settle(message.data);
    const announced = event.data.timeoutMs;
    if (typeof announced === 'number' && announced >= 50 && announced <= 600_000) callTimeoutMs = announced;
    flush();
  });
  const hello = (retryMs: number, elapsedMs: number) => {
    if (port) return;
    window.parent.postMessage(RELAY_HELLO, '*');
    if (elapsedMs >= HANDSHAKE_WAIT_MS) {
      gaveUp = true;
      return flush();
    }
    setTimeout(() => hello(retryMs * 2, elapsedMs + retryMs), Math.min(retryMs, HANDSHAKE_WAIT_MS - elapsedMs));
  };
  hello(FIRST_HELLO_RETRY_MS, 0);

  function settle(data: unknown): void {
    if (!isRecord(data) || typeof data.id !== 'number' || typeof data.status !== 'number') return;
    const entry = pending.get(data.id);
    if (!entry) return;
    pending.delete(data.id);
    clearTimeout(entry.timer);
    const requestId = typeof data.requestId === 'string' ? data.requestId : null;
    entry.resolve({ status: data.status, requestId, body: typeof data.body === 'string' ? data.body : '' });
  }

  function post(call: RelayCall, to: MessagePort): Promise<RelayAnswer> {
    const id = ++lastId;
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

  return {
    send(call) {
      if (port) return post(call, port);
      if (gaveUp) return Promise.resolve(noHost());
      return new Promise((resolve) => waiting.push(() => resolve(port ? post(call, port) : noHost())));
    },
  };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
