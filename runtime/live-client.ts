/**
 * The browser's end of live queries: one push stream per feature and page (server-sent events over
 * `fetch`, so the page's headers, e.g. `authorization`, go with it), the subscriptions on it, and
 * reconnecting with backoff. A subscription is an ordinary call carrying `x-favn-live`; the host
 * answers it as usual and then pushes each new result of it.
 */
import { RpcError } from './rpc-error.js';

/** Where a live query stands: `live` (pushed), `connecting`/`reconnecting`, or `off` (answers once). */
export type LiveStatus = 'connecting' | 'live' | 'reconnecting' | 'off';

/** One subscription's callbacks. */
export interface LiveListener {
  onData: (data: unknown) => void;
  onError: (error: RpcError) => void;
  onStatus: (status: LiveStatus) => void;
}

/** How the channel reaches the host; `client.ts` gives it the page's settings. */
export interface LiveTransport {
  /** Opens `GET /_live/{featureId}`. */
  open: (signal: AbortSignal) => Promise<Response>;
  /** One call of the subscription, with `x-favn-live` (none: a plain call); its result and the `x-favn-live` answer. */
  call: (header?: string) => Promise<{ data: unknown; live: string | null }>;
  /** `POST /_live/{featureId}/unsubscribe`. */
  unsubscribe: (connection: string, subs: string[]) => void;
}

interface Sub {
  id: string;
  listener: LiveListener;
  call: LiveTransport['call'];
  /** Increases with every start: an answer of an older start is out of date. */
  attempt: number;
  live: boolean;
  /** It has shown a result or an error. */
  answered: boolean;
  /** When the plain call in flight (no connection) started, or 0: retries do not send another. */
  asking: number;
  /** A push came during the current call: it is newer than the call's answer. */
  pushed: boolean;
}

const MAX_BACKOFF_MS = 10_000;
/** A connection up this long before it ended starts the backoff over; a shorter one does not. */
const STABLE_MS = 5_000;
/** A plain call unanswered this long (a lost connection) is sent again at the next attempt. */
const ASK_AGAIN_MS = 5_000;
/** A query waits this long for the push connection, then answers without it (and subscribes later). */
const CONNECT_WAIT_MS = 2000;

/**
 * The push stream of one feature on this page, shared by all of its subscriptions. Opened with
 * the first subscription, closed a moment after the last one ends.
 */
export class LiveChannel {
  readonly #transport: Omit<LiveTransport, 'call'>;
  readonly #subs = new Map<string, Sub>();
  #next = 0;
  #connection: string | null = null;
  #abort: AbortController | null = null;
  #failures = 0;
  /** When the current connection said hello (0: none). */
  #helloAt = 0;
  #retry: ReturnType<typeof setTimeout> | null = null;
  #idle: ReturnType<typeof setTimeout> | null = null;
  #ending: string[] = [];

  constructor(transport: Omit<LiveTransport, 'call'>) {
    this.#transport = transport;
  }

  /** Subscribes; `call` runs the query (with the header). Returns the unsubscribe. */
  add(call: LiveTransport['call'], listener: LiveListener): () => void {
    const sub: Sub = {
      id: `s${++this.#next}`,
      listener,
      call,
      attempt: 0,
      live: false,
      answered: false,
      asking: 0,
      pushed: false,
    };
    this.#subs.set(sub.id, sub);
    if (this.#idle) clearTimeout(this.#idle);
    this.#idle = null;
    if (this.#connection) this.#start(sub);
    else if (this.#failures > 0) {
      // The connection is down: answer now, subscribe when it is back.
      listener.onStatus('reconnecting');
      this.#answerOnce(sub);
    } else {
      listener.onStatus('connecting');
      this.#connect();
      setTimeout(() => !this.#connection && this.#subs.has(sub.id) && this.#answerOnce(sub), CONNECT_WAIT_MS);
    }
    return () => this.#remove(sub);
  }

  #remove(sub: Sub): void {
    if (!this.#subs.delete(sub.id)) return;
    sub.attempt = -1;
    if (sub.live && this.#connection) {
      this.#ending.push(sub.id);
      // Subscriptions ended together (a page change) go in one request.
      if (this.#ending.length === 1) queueMicrotask(() => this.#flushEnding());
    }
    if (this.#subs.size === 0) this.#idle = setTimeout(() => this.#disconnect(), 1000);
  }

  #flushEnding(): void {
    const ids = this.#ending;
    this.#ending = [];
    if (this.#connection && ids.length) this.#transport.unsubscribe(this.#connection, ids);
  }

  #disconnect(): void {
    this.#idle = null;
    if (this.#subs.size > 0) return;
    this.#abort?.abort();
    this.#abort = null;
    this.#connection = null;
    if (this.#retry) clearTimeout(this.#retry);
    this.#retry = null;
    this.#failures = 0;
    this.#helloAt = 0;
  }

  /**
   * A plain call for a query that has shown nothing yet, while there is no connection. Its answer
   * shows unless something showed first: one call at a time, and none dropped for a newer one.
   */
  #answerOnce(sub: Sub): void {
    if (sub.answered) return;
    const now = performance.now();
    if (sub.asking && now - sub.asking < ASK_AGAIN_MS) return;
    sub.asking = now;
    const settle = (show: () => void) => {
      if (sub.asking === now) sub.asking = 0;
      if (sub.attempt === -1 || sub.answered) return;
      sub.answered = true;
      show();
    };
    sub.call().then(
      ({ data }) => settle(() => sub.listener.onData(data)),
      (error: RpcError) => settle(() => sub.listener.onError(error)),
    );
  }

  /** Runs the subscription's call on the open connection; its answer says whether it stays live. */
  #start(sub: Sub): void {
    const attempt = ++sub.attempt;
    const connection = this.#connection!;
    sub.pushed = false;
    const status = () => (sub.live ? 'live' : this.#connection === connection ? 'off' : 'reconnecting');
    sub.call(`${connection}.${sub.id}`).then(
      ({ data, live }) => {
        if (sub.attempt !== attempt) {
          // A newer connection subscribed again: this answer still shows while nothing has (a
          // stream that keeps dropping sooner than the host answers would show nothing at all).
          if (sub.attempt !== -1 && !sub.answered) {
            sub.answered = true;
            sub.listener.onData(data);
          }
          return;
        }
        sub.live = live === 'on' && this.#connection === connection;
        sub.answered = true;
        // A push that came first is newer than this answer (the host runs it after the call).
        if (!sub.pushed) sub.listener.onData(data);
        sub.listener.onStatus(status());
      },
      (error: RpcError) => {
        if (sub.attempt !== attempt) return;
        sub.live = false;
        sub.answered = true;
        sub.listener.onError(error);
        // A failed call is not kept live: it answers again when it is called again.
        sub.listener.onStatus(status());
      },
    );
  }

  #connect(): void {
    if (this.#abort) return;
    const abort = (this.#abort = new AbortController());
    void this.#read(abort).then(
      () => this.#lost(abort),
      () => this.#lost(abort),
    );
  }

  async #read(abort: AbortController): Promise<void> {
    const response = await this.#transport.open(abort.signal);
    if (!response.ok || !response.body) {
      await response.body?.cancel();
      return;
    }
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      buffer += value;
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        this.#event(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
      }
    }
  }

  /** One server-sent event: `hello` names the connection; others are pushes to a subscription. */
  #event(block: string): void {
    let name = 'message';
    let data = '';
    for (const line of block.split('\n')) {
      if (line.startsWith('event: ')) name = line.slice(7);
      else if (line.startsWith('data: ')) data += line.slice(6);
    }
    if (!data) return;
    const message = JSON.parse(data) as Record<string, unknown>;
    if (name === 'hello') {
      this.#connection = message.connection as string;
      // The backoff starts over once this connection has stayed up (see #lost), not at once: a
      // stream cut right after its hello would otherwise be opened again every 125-250 ms.
      this.#helloAt = performance.now();
      // A new connection (the first, or after the host restarted): every query subscribes again.
      for (const sub of this.#subs.values()) this.#start(sub);
      return;
    }
    const sub = this.#subs.get(message.sub as string);
    if (!sub) return;
    if ('data' in message) {
      sub.pushed = true;
      sub.answered = true;
      return sub.listener.onData(message.data);
    }
    const error = message.error as { status: number; error: string; requestId: string };
    sub.listener.onError(new RpcError(error.status, error.error, error.requestId || null));
    if (message.ended) {
      sub.live = false;
      // Ended by the host: an expired token subscribes again (with the page's fresh headers).
      if (error.status === 401) this.#start(sub);
      else sub.listener.onStatus('off');
    }
  }

  /** The stream ended or failed: every live query waits, and the channel reconnects with backoff. */
  #lost(abort: AbortController): void {
    if (this.#abort !== abort) return;
    this.#abort = null;
    this.#connection = null;
    if (this.#helloAt && performance.now() - this.#helloAt >= STABLE_MS) this.#failures = 0;
    this.#helloAt = 0;
    if (this.#subs.size === 0) return;
    for (const sub of this.#subs.values()) {
      sub.live = false;
      sub.listener.onStatus('reconnecting');
      this.#answerOnce(sub);
    }
    const delay = Math.min(MAX_BACKOFF_MS, 250 * 2 ** this.#failures++) * (0.5 + Math.random() / 2);
    this.#retry = setTimeout(() => {
      this.#retry = null;
      if (this.#subs.size > 0) this.#connect();
    }, delay);
  }
}

/**
 * Opens a feature's push stream over a WebSocket, as a `fetch` response of the stream's text: a
 * browser keeps only six HTTP/1.1 connections per origin, and a socket takes none of them. The
 * page's headers go in the first message (a browser's WebSocket cannot set them); the host answers
 * `{"status"}` first, then the stream. Rejects when the socket cannot open (a proxy that refuses
 * upgrades): the caller then opens the stream over `fetch`.
 *
 * @example
 * const response = await openLiveSocket('wss://app.example.com/_live/feature-x', { authorization }, signal)
 */
export function openLiveSocket(url: string, headers: Record<string, string>, signal: AbortSignal): Promise<Response> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    let stream!: ReadableStreamDefaultController<string>;
    const body = new ReadableStream<string>({ start: (c) => void (stream = c), cancel: () => ws.close() });
    let answered = false;
    const end = () => {
      try {
        stream.close();
      } catch {
        // Already closed or errored.
      }
    };
    signal.addEventListener(
      'abort',
      () => {
        ws.close();
        if (!answered) reject(signal.reason);
        end();
      },
      { once: true },
    );
    ws.onopen = () => ws.send(JSON.stringify({ headers }));
    ws.onmessage = (event) => {
      const text = String(event.data);
      if (answered) return stream.enqueue(text);
      answered = true;
      const first = JSON.parse(text) as { status: number; body?: string };
      if (first.status === 200) return resolve(new Response(body.pipeThrough(new TextEncoderStream())));
      ws.close();
      resolve(new Response(first.body ?? '', { status: first.status }));
    };
    const failed = () => {
      if (!answered) {
        answered = true;
        reject(new TypeError(`The live queries socket ${url} closed before it answered`));
      }
      end();
    };
    ws.onclose = failed;
    // Some runtimes (Node 22) report a refused handshake with an error and never a close (and
    // calling close() then reports the error again): the error alone ends it.
    ws.onerror = failed;
  });
}

/** `ws(s)://` for an `http(s)://` URL, resolved against the page; `null` where no socket can go. */
export function socketUrl(url: string): string | null {
  if (typeof WebSocket === 'undefined') return null;
  try {
    const resolved = new URL(url, typeof location === 'undefined' ? undefined : location.href);
    if (resolved.protocol !== 'http:' && resolved.protocol !== 'https:') return null;
    resolved.protocol = resolved.protocol === 'https:' ? 'wss:' : 'ws:';
    return resolved.href;
  } catch {
    return null;
  }
}
