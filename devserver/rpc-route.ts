import { randomUUID } from 'node:crypto';
import type { Context, Hono, MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { HTTPException } from 'hono/http-exception';
import { ErrorText, REQUEST_ID_HEADER, RPC_PREFIX } from '../runtime/protocol.js';
import type { ServerContext } from '../runtime/server.js';
import { buildServerContext } from './context.js';
import type { Invocation } from './executor.js';
import type { HostedFeature } from './feature.js';
import type { HostEnv, HostState } from './host.js';

const SAFE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/;

/**
 * Mounts `POST /rpc/{featureId}/{fnName}`. The pipeline is a sequence of small steps: request id,
 * body limit, find feature, parse body, check declaration, resolve, run with a deadline, respond.
 */
export function registerRpcRoute(app: Hono<HostEnv>, state: HostState): void {
  const route = `${RPC_PREFIX}/:featureId/:fnName`;
  app.use(`${RPC_PREFIX}/*`, assignRequestId);
  app.post(
    route,
    bodyLimit({
      maxSize: state.options.bodyLimit,
      onError: () => {
        // The rest of the body stays unread: close the connection so it is not reused.
        const res = new Response(null, { headers: { connection: 'close' } });
        throw new HTTPException(413, { message: `${ErrorText.payloadTooLarge}: the body is over ${state.options.bodyLimit} bytes`, res });
      },
    }),
    async function rpcHandler(c) {
      const started = performance.now();
      const { featureId, fnName } = c.req.param();
      c.set('call', { featureId, fnName, started });
      const feature = findFeature(state, featureId);
      const args = await parseRpcBody(c);
      const invocation = await findFunction(feature, fnName);
      const identity = await state.options.identify(c, feature);
      const controller = new AbortController();
      const ctx = buildServerContext(feature, c.get('requestId'), identity, controller.signal);
      const result = await runWithDeadline(invocation, ctx, args, feature, controller, c.req.raw.signal);
      const body = serializeResult(result, fnName);
      state.calls.record({ featureId, fnName, status: 200, ms: performance.now() - started, requestId: ctx.requestId });
      return c.body(body, 200, { 'content-type': 'application/json' });
    },
  );
  app.all(route, () => {
    throw new HTTPException(405, { message: `${ErrorText.malformed}: use POST with a JSON body {"args": [...]}` });
  });
}

/** Sets the call's request id: a fresh UUID, or the caller's if it is a short safe token. */
const assignRequestId: MiddlewareHandler<HostEnv> = async function assignRequestId(c, next) {
  const incoming = c.req.header(REQUEST_ID_HEADER);
  const requestId = incoming && SAFE_REQUEST_ID.test(incoming) ? incoming : randomUUID();
  c.set('requestId', requestId);
  c.header(REQUEST_ID_HEADER, requestId);
  await next();
};

function findFeature(state: HostState, featureId: string): HostedFeature {
  const feature = state.features.get(featureId);
  if (!feature) throw new HTTPException(404, { message: ErrorText.featureNotFound(featureId) });
  if (feature.unavailableReason) throw new HTTPException(503, { message: `${ErrorText.unavailable}: ${feature.unavailableReason}` });
  if (!feature.executor) {
    throw new HTTPException(503, { message: `${ErrorText.unavailable}: feature "${featureId}" has no serverFunctions (no module loaded and no endpoint configured)` });
  }
  return feature;
}

async function parseRpcBody(c: Context<HostEnv>): Promise<unknown[]> {
  const type = c.req.header('content-type') ?? '';
  if (!/^application\/(?:[\w.+-]+\+)?json\b/i.test(type)) {
    throw new HTTPException(400, { message: `${ErrorText.malformed}: Content-Type must be application/json (got ${JSON.stringify(type)})` });
  }
  const text = await c.req.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (error) {
    throw new HTTPException(400, { message: `${ErrorText.malformed}: body is not valid JSON (${(error as Error).message})` });
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new HTTPException(400, { message: `${ErrorText.malformed}: body must be a JSON object like {"args": [...]}` });
  }
  const args = (body as { args?: unknown }).args;
  if (!Array.isArray(args)) {
    throw new HTTPException(400, { message: `${ErrorText.malformed}: "args" must be an array (got ${args === undefined ? 'nothing' : typeof args})` });
  }
  return args;
}

async function findFunction(feature: HostedFeature, fnName: string): Promise<Invocation> {
  if (!feature.declared.has(fnName)) throw new HTTPException(403, { message: ErrorText.notDeclared(fnName) });
  const resolved = feature.executor?.resolve(fnName);
  const invocation = resolved instanceof Promise ? await resolved : resolved;
  if (!invocation) throw new HTTPException(403, { message: ErrorText.notExported(fnName) });
  return invocation;
}

/**
 * Runs the invocation; after `timeoutMs` the call fails with 503 and `ctx.signal` aborts. A client
 * that disconnects aborts `ctx.signal` too.
 */
async function runWithDeadline(
  invocation: Invocation,
  ctx: ServerContext,
  args: unknown[],
  feature: HostedFeature,
  controller: AbortController,
  clientSignal: AbortSignal,
): Promise<unknown> {
  const onClientGone = () => controller.abort(new Error('The client disconnected'));
  clientSignal.addEventListener('abort', onClientGone, { once: true });
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const error = new HTTPException(503, { message: `${ErrorText.timedOut} after ${feature.timeoutMs} ms` });
      controller.abort(error);
      reject(error);
    }, feature.timeoutMs);
  });
  try {
    return await Promise.race([invokeSafely(invocation, ctx, args), deadline]);
  } finally {
    clearTimeout(timer);
    clientSignal.removeEventListener('abort', onClientGone);
  }
}

async function invokeSafely(invocation: Invocation, ctx: ServerContext, args: unknown[]): Promise<unknown> {
  try {
    return await invocation(ctx, args);
  } catch (thrown) {
    if (thrown instanceof Error) throw thrown;
    // Functions may throw anything; the error handler only sees Errors. Keep a status if given.
    const message = typeof thrown === 'string' ? thrown : `Non-error thrown: ${describeValue(thrown)}`;
    const { statusCode, status } = (typeof thrown === 'object' && thrown !== null ? thrown : {}) as { statusCode?: unknown; status?: unknown };
    throw Object.assign(new Error(message), { statusCode: statusCode ?? status });
  }
}

function describeValue(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}

function serializeResult(result: unknown, fnName: string): string {
  try {
    return JSON.stringify(result === undefined ? null : result) ?? 'null';
  } catch (error) {
    throw new Error(`${fnName} returned a value that cannot be sent as JSON: ${(error as Error).message}`);
  }
}
