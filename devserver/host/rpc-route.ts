import type { Context, Hono } from 'hono';
import { CONTRACT_ERRORS, contractText, LIVE_HEADER, REQUEST_ID_HEADER, RPC_PREFIX } from '../../runtime/protocol.js';
import { RequestError } from '../../runtime/request-error.js';
import type { ServerContext } from '../../runtime/server.js';
import { buildServerContext, CallAbort } from './context.js';
import { RawJson, type CallRequest, type Invocation } from '../executors/executor.js';
import type { HostedFeature } from '../feature/hosted-feature.js';
import type { HostEnv, HostState } from './host-state.js';
import { nodeBindings, readBody, refuseCallsFromActions } from './read-body.js';
import { jsonDepthExceeds, MAX_JSON_DEPTH } from '../common/json-depth.js';
import { assignRequestId } from '../common/request-id.js';
import { withTimeout } from '../common/with-timeout.js';
import { DEFAULT_RATE_LIMITS } from '../rate-limit/limits.js';
import { checkRateLimit } from '../rate-limit/rate-limit.js';
import { createCrossSiteCheck } from '../auth/csrf.js';
import type { Identity } from '../auth/identity.js';
import { trackReads, type ReadSet } from '../data/read-set.js';
import { groupKey } from '../live/live-hub.js';
import { outcomeOf } from './live-route.js';

/**
 * Mounts `POST /rpc/{featureId}/{fnName}`. The pipeline is a sequence of small steps: request id,
 * find feature, identify the caller, read the body within its limit, check declaration, resolve,
 * rate limit, run with a deadline, respond. It runs once per call, so it allocates as little as it can.
 */
export function registerRpcRoute(app: Hono<HostEnv>, state: HostState): void {
  const route = `${RPC_PREFIX}/:featureId/:fnName`;
  const checkOrigin = createCrossSiteCheck(state.options.crossSite);
  app.post(route, async function rpcHandler(c) {
    const started = performance.now();
    const requestId = assignRequestId(c);
    const featureId = c.req.param('featureId');
    const fnName = c.req.param('fnName');
    c.set('call', { featureId, fnName, started });
    // Before anything is read: a cross-site browser POST never reaches a function (CSRF).
    checkOrigin(c.req.raw.headers, c.req.url);
    refuseCallsFromActions(c);
    const feature = findFeature(state, featureId);
    // Who is calling, before anything else is read: a caller refused with 401 learns nothing of
    // the feature's functions (which names exist) and makes the host read no body.
    const who = state.options.identify(c, feature);
    const identity = who instanceof Promise ? await who : who;
    const args = await parseRpcBody(c, state.options.bodyLimit);
    const found = findFunction(feature, fnName);
    const invocation = found instanceof Promise ? await waitForLoad(found, feature) : found;
    const { rateLimiter } = state.options;
    const limits =
      rateLimiter && (feature.manifest.rateLimits ?? (state.options.defaultRateLimits ? DEFAULT_RATE_LIMITS : null));
    if (limits) {
      const limited = checkRateLimit(rateLimiter, {
        featureId,
        tenantId: identity.tenantId,
        kind: invocation.kind ?? 'plain',
        limits,
      });
      if (limited) await limited;
    }
    const abort = new CallAbort();
    const ctx = buildServerContext(feature, requestId, identity, abort);
    state.live.watch(featureId, feature.data);
    const liveHeader = c.req.header(LIVE_HEADER);
    const live = liveHeader === undefined ? null : startLive(state, liveHeader, feature, identity, ctx);
    const result = await runWithDeadline(invocation, ctx, args, feature, abort, c);
    const body = serializeResult(result, fnName);
    const status = result instanceof RawJson ? result.status : 200;
    state.calls.record({ featureId, fnName, status, ms: performance.now() - started, requestId });
    // A plain headers object keeps @hono/node-server on its fast path.
    const headers: Record<string, string> = { 'content-type': 'application/json', [REQUEST_ID_HEADER]: requestId };
    if (live) headers[LIVE_HEADER] = keepLive(state, live, feature, fnName, invocation, identity, args, body, status);
    return new Response(body, { status, headers });
  });
  app.all(route, (c) => {
    assignRequestId(c);
    throw new RequestError(405, `${CONTRACT_ERRORS.malformed.text}: use POST with a JSON body {"args": [...]}`);
  });
  // Every other path under /rpc answers in the contract's shape too (trailing slash, extra or
  // missing segment), so a client always gets JSON with a request id.
  const noRoute = (c: Context<HostEnv>) => {
    assignRequestId(c);
    throw new RequestError(404, `Not found: RPC calls go to POST ${RPC_PREFIX}/{featureId}/{fnName}`);
  };
  app.all(RPC_PREFIX, noRoute);
  app.all(`${RPC_PREFIX}/*`, noRoute);
}

function findFeature(state: HostState, featureId: string): HostedFeature {
  const feature = state.features.get(featureId);
  if (!feature) throw RequestError.of('featureNotFound', undefined, featureId);
  if (feature.unavailableReason) throw RequestError.of('unavailable', feature.unavailableReason);
  if (!feature.functions) {
    throw RequestError.of(
      'unavailable',
      `feature "${featureId}" has no serverFunctions (no module loaded and no endpoint configured)`,
    );
  }
  return feature;
}

async function parseRpcBody(c: Context<HostEnv>, limit: number): Promise<unknown[]> {
  const text = await readBody(c, limit);
  const type = c.req.header('content-type') ?? '';
  if (!/^application\/(?:[\w.+-]+\+)?json\b/i.test(type)) {
    throw RequestError.of('malformed', `Content-Type must be application/json (got ${JSON.stringify(type)})`);
  }
  // Checked on the text, before parsing: no function, validator or isolate sees deeper input.
  // The body object and the args array are two levels; each argument may nest MAX_JSON_DEPTH.
  if (jsonDepthExceeds(text, MAX_JSON_DEPTH + 2)) {
    throw RequestError.of('malformed', `arguments are nested deeper than ${MAX_JSON_DEPTH} levels`);
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (error) {
    throw RequestError.of('malformed', `body is not valid JSON (${(error as Error).message})`);
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw RequestError.of('malformed', `body must be a JSON object like {"args": [...]}`);
  }
  const args = (body as { args?: unknown }).args;
  if (!Array.isArray(args)) {
    throw RequestError.of('malformed', `"args" must be an array (got ${args === undefined ? 'nothing' : typeof args})`);
  }
  return args;
}

/** The invocation of a declared, exported function; a promise only while code reloads. */
function findFunction(feature: HostedFeature, fnName: string): Invocation | Promise<Invocation> {
  if (!feature.declared.has(fnName)) throw RequestError.of('notDeclared', undefined, fnName);
  // A feature that loads on first need: this call loads it (or waits for the load under way).
  const loading = feature.ready?.();
  if (loading) return loading.then(() => findFunction(feature, fnName));
  const resolved = feature.functions?.resolve(fnName);
  if (resolved instanceof Promise) return resolved.then((invocation) => exported(invocation, fnName));
  return exported(resolved, fnName);
}

function exported(invocation: Invocation | undefined, fnName: string): Invocation {
  if (!invocation) throw RequestError.of('notExported', undefined, fnName);
  return invocation;
}

/** A call waiting for its feature's code to load waits at most the feature's `timeoutMs`, too. */
function waitForLoad(found: Promise<Invocation>, feature: HostedFeature): Promise<Invocation> {
  const ms = feature.timeoutMs;
  return withTimeout(found, ms, () =>
    RequestError.of('unavailable', `the server code was still loading after ${ms} ms`),
  );
}

/**
 * Runs the invocation; after `timeoutMs` the call fails with 503 and `ctx.signal` aborts. A client
 * that disconnects aborts `ctx.signal` too.
 */
function runWithDeadline(
  invocation: Invocation,
  ctx: ServerContext,
  args: unknown[],
  feature: HostedFeature,
  abort: CallAbort,
  c: Context<HostEnv>,
): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const stopWatching = watchDisconnect(c, abort);
    const timer = setTimeout(() => {
      const row = feature.functions?.mode === 'endpoint' ? 'upstreamTimedOut' : 'timedOut';
      const error = new RequestError(503, `${contractText(row)} after ${feature.timeoutMs} ms`);
      abort.abort(error);
      reject(error);
    }, feature.timeoutMs);
    const settle = () => {
      clearTimeout(timer);
      stopWatching();
    };
    invokeSafely(invocation, ctx, args, c.req).then(
      (value) => {
        settle();
        resolve(value);
      },
      (error: unknown) => {
        settle();
        reject(error);
      },
    );
  });
}

/** Aborts the call when the client goes away before the response is written. */
function watchDisconnect(c: Context<HostEnv>, abort: CallAbort): () => void {
  const node = nodeBindings(c);
  const onGone = () => {
    if (!node || !node.outgoing.writableFinished) abort.abort(new Error('The client disconnected'));
  };
  if (node) {
    // Cheaper than the request's AbortSignal, which costs an AbortController per call.
    node.outgoing.once('close', onGone);
    return () => node.outgoing.off('close', onGone);
  }
  const signal = c.req.raw.signal;
  signal.addEventListener('abort', onGone, { once: true });
  return () => signal.removeEventListener('abort', onGone);
}

async function invokeSafely(
  invocation: Invocation,
  ctx: ServerContext,
  args: unknown[],
  request: CallRequest,
): Promise<unknown> {
  try {
    return await invocation(ctx, args, request);
  } catch (thrown) {
    if (thrown instanceof Error) throw thrown;
    // Functions may throw anything; the error handler only sees Errors. Keep a status if given.
    const message = typeof thrown === 'string' ? thrown : `Non-error thrown: ${describeValue(thrown)}`;
    const { statusCode, status } = (typeof thrown === 'object' && thrown !== null ? thrown : {}) as {
      statusCode?: unknown;
      status?: unknown;
    };
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

/** The result as JSON text: at most MAX_JSON_DEPTH levels deep, like arguments. */
function serializeResult(result: unknown, fnName: string): string {
  let json: string;
  if (result instanceof RawJson) json = result.json;
  else {
    try {
      json = JSON.stringify(result === undefined ? null : result) ?? 'null';
    } catch (error) {
      if (error instanceof RangeError && /call stack/i.test(error.message)) throw tooDeep(fnName);
      throw new Error(`${fnName} returned a value that cannot be sent as JSON: ${(error as Error).message}`);
    }
  }
  if (jsonDepthExceeds(json)) throw tooDeep(fnName);
  return json;
}

function tooDeep(fnName: string): Error {
  return new Error(`${fnName} returned a value nested deeper than ${MAX_JSON_DEPTH} levels, which is not sent`);
}

/** A subscribing call, as it starts: where its pushes go and what it reads; or why it cannot be live. */
type LiveStart = { connectionId: string; subId: string; reads: ReadSet; since: number } | string;

function startLive(
  state: HostState,
  header: string,
  feature: HostedFeature,
  identity: Identity,
  ctx: ServerContext,
): LiveStart {
  const checked = state.live.check(header, feature.id, identity);
  if (typeof checked === 'string') return checked;
  return { ...checked, reads: trackReads(ctx), since: state.live.seq };
}

/** Which kinds of function may stay live: those that only read. */
const LIVE_KINDS = new Set<string | undefined>([undefined, 'plain', 'queryRows', 'query']);

/** Keeps the answered call's query live; the `x-favn-live` answer: `on`, or `off; <why>`. */
function keepLive(
  state: HostState,
  live: LiveStart,
  feature: HostedFeature,
  fnName: string,
  invocation: Invocation,
  identity: Identity,
  args: unknown[],
  json: string,
  status: number,
): string {
  if (typeof live === 'string') return `off; ${live}`;
  if (feature.functions?.mode === 'endpoint') return "off; the function runs on the feature's own backend";
  if (!LIVE_KINDS.has(invocation.kind)) return `off; a ${invocation.kind} is not a query`;
  if (status !== 200) return 'off; the answer was not a result';
  if (live.reads.wrote) return 'off; the function wrote data';
  if (live.reads.tables.size === 0) return 'off; the function read no table';
  const argsJson = JSON.stringify(args);
  if (argsJson.length > state.live.limits.maxArgsBytes) return 'off; the arguments are too long to keep live';
  const featureId = feature.id;
  const run = () =>
    outcomeOf(
      async (requestId) => {
        const current = findFeature(state, featureId);
        const found = findFunction(current, fnName);
        const again = found instanceof Promise ? await waitForLoad(found, current) : found;
        const abort = new CallAbort();
        const ctx = buildServerContext(current, requestId, identity, abort);
        const reads = trackReads(ctx);
        const result = await withTimeout(invokeSafely(again, ctx, args, NO_REQUEST), current.timeoutMs, () => {
          const error = new RequestError(503, `${contractText('timedOut')} after ${current.timeoutMs} ms`);
          abort.abort(error);
          return error;
        });
        if (result instanceof RawJson && result.status !== 200) throw new RequestError(result.status, result.json);
        return { json: serializeResult(result, fnName), tables: reads.tables, wrote: reads.wrote };
      },
      state,
      `${featureId}/${fnName}`,
    );
  const kept = state.live.subscribe({
    connectionId: live.connectionId,
    subId: live.subId,
    featureId,
    identity,
    key: groupKey(featureId, fnName, argsJson, identity),
    tables: live.reads.tables,
    json,
    since: live.since,
    run,
  });
  return kept === true ? 'on' : `off; ${kept}`;
}

/** A re-run has no incoming request: it sends no caller headers anywhere. */
const NO_REQUEST = { header: () => undefined };
