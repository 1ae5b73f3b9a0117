import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocket, WebSocketServer } from 'ws';
import { ensureInstalled, wsModule } from '../common/load-on-use.js';
import { LIVE_PREFIX } from '../../runtime/protocol.js';
import { MAX_UNREAD_BYTES } from './live-route.js';

/** A server whose `upgrade` requests live queries may take (Node's, Vite's). */
interface UpgradeSource {
  on(event: 'upgrade', listener: (req: IncomingMessage, socket: Duplex, head: Buffer) => void): unknown;
  off(event: 'upgrade', listener: (req: IncomingMessage, socket: Duplex, head: Buffer) => void): unknown;
}

/** Most bytes of the page's first message (its headers). */
const MAX_HELLO_BYTES = 16 * 1024;
/** Sockets still waiting for their first message, at most; more are refused at the upgrade. */
const MAX_WAITING_SOCKETS = 1000;
/** A socket that names no headers within this long is closed. */
const HELLO_WAIT_MS = 10_000;
/** Headers only the browser sets: a page cannot claim another origin, host or cookie through the socket. */
const FROM_BROWSER_ONLY = /^(?:host|cookie|origin|sec-|x-forwarded-|forwarded$|connection$|upgrade$|content-)/i;

/**
 * Live queries over a WebSocket, for browsers: the same push stream as `GET /_live/{featureId}`,
 * carried on a socket so that it does not take one of the six HTTP/1.1 connections a browser keeps
 * per origin (many tabs, or a page with several features, would otherwise stall their calls).
 *
 * The page opens `ws(s)://host/_live/{featureId}` and sends its headers first:
 * `{"headers": {"authorization": "Bearer ..."}}` (a browser's WebSocket cannot set them). The host
 * then runs the very request `GET /_live/{featureId}` would be, through `fetch` (the host's app:
 * host check, drain, cross-site check, identity, rate limit), with the socket's own cookies, origin
 * and host. It sends `{"status": N}` (with `"body"` when it is not 200), then the stream's text,
 * one message per piece; closing either side ends the other.
 *
 * @example
 * attachLiveSockets(httpServer, host.app.fetch)
 */
export function attachLiveSockets(
  server: UpgradeSource,
  fetch: (request: Request) => Response | Promise<Response>,
): () => void {
  // Made at the first upgrade: a page that never opens a socket never loads `ws`. A missing
  // install shows now, not at the first socket.
  ensureInstalled('ws');
  let sockets: WebSocketServer | null = null;
  let waiting = 0;
  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    // Other upgrades (Vite's HMR socket) are their owners' to answer.
    if (!req.url?.startsWith(`${LIVE_PREFIX}/`) || req.method !== 'GET') return;
    // Sockets that have not named their headers yet hold nothing of the host, but are counted.
    if (waiting >= MAX_WAITING_SOCKETS) return void socket.destroy();
    socket.on('error', () => {});
    try {
      sockets ??= new (wsModule().WebSocketServer)({ noServer: true, maxPayload: MAX_HELLO_BYTES });
    } catch {
      // An upgrade listener that throws would end the process: this socket is refused instead.
      return void socket.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\r\n');
    }
    sockets.handleUpgrade(req, socket, head, (ws) => {
      // A frame the socket refuses (too long, not UTF-8) is an error on it, never the process's.
      ws.on('error', () => ws.terminate());
      waiting++;
      void serveSocket(ws, req, fetch, () => waiting--).catch(() => ws.terminate());
    });
  };
  server.on('upgrade', onUpgrade);
  return () => {
    server.off('upgrade', onUpgrade);
    if (!sockets) return;
    for (const ws of sockets.clients) ws.terminate();
    sockets.close();
  };
}

async function serveSocket(
  ws: WebSocket,
  req: IncomingMessage,
  fetch: (request: Request) => Response | Promise<Response>,
  named: () => void,
): Promise<void> {
  let closed = false;
  ws.once('close', () => (closed = true));
  const extra = await firstMessage(ws);
  named();
  if (!extra) return void ws.close(1008, 'the first message must be {"headers": {...}}');
  const headers = new Headers();
  try {
    for (const [name, value] of Object.entries(req.headers)) {
      if (/^(?:connection|upgrade|sec-websocket-)/i.test(name) || value === undefined) continue;
      headers.set(name, Array.isArray(value) ? value.join(', ') : value);
    }
    for (const [name, value] of Object.entries(extra)) if (!FROM_BROWSER_ONLY.test(name)) headers.set(name, value);
  } catch {
    // A header name or value no HTTP request could carry.
    return void ws.close(1008, 'a header of the first message is not a valid HTTP header');
  }
  let response: Response;
  try {
    response = await fetch(new Request(`http://${req.headers.host ?? 'localhost'}${req.url}`, { headers }));
  } catch (error) {
    return void ws.close(1011, (error as Error).message.slice(0, 100));
  }
  if (closed) {
    // The page left while the host answered: free the stream at once.
    await response.body?.cancel().catch(() => {});
    return;
  }
  if (response.status !== 200 || !response.body) {
    ws.send(JSON.stringify({ status: response.status, body: await response.text() }));
    return void ws.close(1000);
  }
  ws.send(JSON.stringify({ status: 200 }));
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  ws.once('close', () => void reader.cancel().catch(() => {}));
  // The pieces of one turn of the event loop (a push is a few) go out as one message.
  let pending = '';
  const flush = () => {
    if (pending && ws.readyState === ws.OPEN) ws.send(pending);
    pending = '';
    // A page that does not read its pushes is cut off, as on the stream itself (MAX_UNREAD_BYTES).
    if (ws.bufferedAmount > MAX_UNREAD_BYTES) {
      void reader.cancel().catch(() => {});
      ws.terminate();
    }
  };
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done || ws.readyState !== ws.OPEN) break;
      if (!pending) setImmediate(flush);
      pending += value;
    }
  } catch {
    // The socket went away; the stream was cancelled.
  }
  flush();
  if (ws.readyState === ws.OPEN) ws.close(1000);
}

/** The headers the page sent first, or `null` when it sent something else or nothing in time. */
function firstMessage(ws: WebSocket): Promise<Record<string, string> | null> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(null), HELLO_WAIT_MS);
    const done = (value: Record<string, string> | null) => {
      clearTimeout(timer);
      ws.off('close', closed);
      resolve(value);
    };
    const closed = () => done(null);
    ws.once('close', closed);
    ws.once('message', (data, isBinary) => {
      if (isBinary) return done(null);
      try {
        const parsed = JSON.parse(String(data)) as { headers?: unknown };
        const extra = parsed.headers;
        if (typeof extra !== 'object' || extra === null || Array.isArray(extra)) return done(null);
        const entries = Object.entries(extra);
        if (entries.length > 64 || !entries.every(([, v]) => typeof v === 'string')) return done(null);
        done(extra as Record<string, string>);
      } catch {
        done(null);
      }
    });
  });
}
