import { randomUUID } from 'node:crypto';
import type { Context, Hono } from 'hono';
import { LIVE_PREFIX, REQUEST_ID_HEADER } from '../../runtime/protocol.js';
import { RequestError } from '../../runtime/request-error.js';
import type { Identity } from '../auth/identity.js';
import { createCrossSiteCheck } from '../auth/csrf.js';
import { assignRequestId } from '../common/request-id.js';
import type { HostedFeature } from '../feature/hosted-feature.js';
import type { RunOutcome } from '../live/live-hub.js';
import { DEFAULT_RATE_LIMITS } from '../rate-limit/limits.js';
import { checkRateLimit } from '../rate-limit/rate-limit.js';
import { capMessage, toFailure } from './handle-error.js';
import type { HostEnv, HostState } from './host-state.js';
import { nodeBindings, readBody } from './read-body.js';

const encoder = new TextEncoder();

/** Most bytes of pushes one connection may leave unread (waiting for its socket) before it is closed. */
export const MAX_UNREAD_BYTES = 16 * 1024 * 1024;

/**
 * `GET /_live/{featureId}`: the page's push stream of live queries (server-sent events). The caller
 * is identified like an RPC call, and the stream counts against the feature's `query` rate limit.
 * Its first event names the connection; calls carrying `x-favn-live: {connection}.{subId}` then keep
 * their query live on it, and each push is `data: {"sub": id, "data": result}` (or `"error"`).
 *
 * `POST /_live/{featureId}/unsubscribe` with `{"connection": id, "subs": [ids]}` ends subscriptions.
 */
export function registerLiveRoutes(app: Hono<HostEnv>, state: HostState): void {
  const checkOrigin = createCrossSiteCheck(state.options.crossSite);
  app.get(`${LIVE_PREFIX}/:featureId`, async (c) => {
    const requestId = assignRequestId(c);
    // Another site's page (an EventSource, a WebSocket) never gets a stream with this host's cookies.
    checkOrigin(c.req.raw.headers, c.req.url);
    const { feature, identity } = await callerOf(c, state);
    await countAgainstLimits(state, feature, identity);
    let id = '';
    let controller!: ReadableStreamDefaultController<Uint8Array>;
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      state.live.close(id);
      try {
        controller.close();
      } catch {
        // Already closed by the client going away.
      }
    };
    const stream = new ReadableStream<Uint8Array>(
      {
        start(c) {
          controller = c;
        },
        cancel: end,
      },
      new ByteLengthQueuingStrategy({ highWaterMark: 64 * 1024 }),
    );
    const send = (chunk: string | Uint8Array) => {
      if (ended) return;
      try {
        controller.enqueue(typeof chunk === 'string' ? encoder.encode(chunk) : chunk);
      } catch {
        return end();
      }
      // A page that does not read its pushes (or cannot keep up) is cut off before the host holds
      // more for it than MAX_UNREAD_BYTES; it reconnects and subscribes again when it reads again.
      if ((controller.desiredSize ?? 0) < -MAX_UNREAD_BYTES) end();
    };
    id = state.live.open(feature.id, identity, send, end);
    nodeBindings(c)?.outgoing.once('close', end);
    send(`event: hello\ndata: {"connection":"${id}"}\n\n`);
    return new Response(stream, {
      headers: {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        'x-accel-buffering': 'no',
        [REQUEST_ID_HEADER]: requestId,
      },
    });
  });
  app.post(`${LIVE_PREFIX}/:featureId/unsubscribe`, async (c) => {
    assignRequestId(c);
    checkOrigin(c.req.raw.headers, c.req.url);
    const { feature, identity } = await callerOf(c, state);
    const body = parseUnsubscribe(await readBody(c, 64 * 1024));
    for (const sub of body.subs) {
      // Only the caller whose connection it is may end its subscriptions.
      const checked = state.live.check(`${body.connection}.${sub}`, feature.id, identity);
      if (typeof checked !== 'string') state.live.unsubscribe(checked.connectionId, [checked.subId]);
    }
    return c.body(null, 204);
  });
  app.all(`${LIVE_PREFIX}/*`, (c) => {
    assignRequestId(c);
    throw new RequestError(404, `Not found: live queries connect with GET ${LIVE_PREFIX}/{featureId}`);
  });
}

async function callerOf(
  c: Context<HostEnv>,
  state: HostState,
): Promise<{ feature: HostedFeature; identity: Identity }> {
  const featureId = c.req.param('featureId') ?? '';
  const feature = state.features.get(featureId);
  if (!feature) throw RequestError.of('featureNotFound', undefined, featureId);
  if (feature.unavailableReason) throw RequestError.of('unavailable', feature.unavailableReason);
  const identity = await state.options.identify(c, feature);
  return { feature, identity };
}

async function countAgainstLimits(state: HostState, feature: HostedFeature, identity: Identity): Promise<void> {
  const { rateLimiter } = state.options;
  const limits =
    rateLimiter && (feature.manifest.rateLimits ?? (state.options.defaultRateLimits ? DEFAULT_RATE_LIMITS : null));
  if (!limits) return;
  const limited = checkRateLimit(rateLimiter, {
    featureId: feature.id,
    tenantId: identity.tenantId,
    kind: 'query',
    limits,
  });
  if (limited) await limited;
}

function parseUnsubscribe(text: string): { connection: string; subs: string[] } {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = null;
  }
  const { connection, subs } = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  if (typeof connection !== 'string' || !Array.isArray(subs) || !subs.every((s) => typeof s === 'string')) {
    throw RequestError.of('malformed', 'the body must be {"connection": "...", "subs": ["..."]}');
  }
  return { connection, subs: subs as string[] };
}

/**
 * Runs `work` as one re-run of a live query: its outcome, with an error in the contract's shape
 * (5xx text hidden outside dev, as in an answer to a call).
 */
export async function outcomeOf(
  work: (requestId: string) => Promise<{ json: string; tables: ReadonlySet<string>; wrote: boolean }>,
  state: HostState,
  where: string,
): Promise<RunOutcome> {
  const requestId = randomUUID();
  try {
    return await work(requestId);
  } catch (error) {
    const { status, message, expected } = toFailure(error, state.options.dev);
    if (status >= 500 && !expected)
      state.options.logError(`Live query ${where} failed when it ran again (request ${requestId})`, error);
    return { error: { status, error: capMessage(message), requestId } };
  }
}
