import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Context } from 'hono';
import { RequestError } from '../../runtime/request-error.js';
import { isCtxFetchConnection } from '../isolate/fetch-sockets.js';

/** The Node request and response behind a Hono context on `@hono/node-server`, if any. */
export function nodeBindings(c: Context): { incoming: IncomingMessage; outgoing: ServerResponse } | null {
  const env = c.env as { incoming?: IncomingMessage; outgoing?: ServerResponse } | undefined;
  return env?.incoming && env.outgoing ? { incoming: env.incoming, outgoing: env.outgoing } : null;
}

/**
 * Refuses a request that an action's `ctx.fetch` sent to this host (allowed to fetch loopback,
 * it still must not call the host's own routes, whoever it would call them as).
 */
export function refuseCallsFromActions(c: Context): void {
  const socket = nodeBindings(c)?.incoming.socket;
  if (socket && isCtxFetchConnection(socket.remoteAddress, socket.remotePort)) {
    throw new RequestError(403, 'Forbidden: ctx.fetch of an action cannot call the host it runs in');
  }
}

/**
 * Reads the request body as text, refusing more than `limit` bytes with 413 before parsing: a
 * larger `Content-Length` is refused without reading, a chunked body as soon as it passes the
 * limit. On Node it reads the socket stream directly (building a web `Request` per call costs
 * more than the rest of the call).
 */
export async function readBody(c: Context, limit: number): Promise<string> {
  const declared = Number(c.req.header('content-length'));
  if (declared > limit) throw tooLarge(limit);
  const node = nodeBindings(c);
  if (!node || node.incoming.readableEnded) {
    const text = await c.req.text();
    if (Buffer.byteLength(text) > limit) throw tooLarge(limit);
    return text;
  }
  const { incoming } = node;
  return new Promise<string>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = () => {
      incoming.off('data', onData);
      incoming.off('end', onEnd);
      incoming.off('error', onError);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        cleanup();
        incoming.pause();
        reject(tooLarge(limit));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks).toString('utf8'));
    };
    const onError = (error: Error) => {
      cleanup();
      reject(error);
    };
    incoming.on('data', onData);
    incoming.on('end', onEnd);
    incoming.on('error', onError);
  });
}

function tooLarge(limit: number): RequestError {
  // The rest of the body stays unread: close the connection so it is not reused.
  const headers = { connection: 'close' };
  return RequestError.of('payloadTooLarge', `the body is over ${limit} bytes`, undefined, { headers });
}
