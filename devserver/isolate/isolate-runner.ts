import { HTTPException } from 'hono/http-exception';
import type { HandlerKind } from '../../runtime/handlers.js';
import { ErrorText } from '../../runtime/protocol.js';
import type { FeatureDb, ServerContext } from '../../runtime/server.js';
import type { QueryFn } from '../db/sql-client.js';
import { RawJson, type Invocation } from '../executor.js';
import type { FeatureData } from '../sql/feature-data.js';
import { isolateFetch } from './isolate-fetch.js';
import { IsolatePool, type IsolateContext, type IsolatePoolStats, type IsolateSlot } from './isolate-pool.js';
import { DEFAULT_LIMITS, type IsolateLimits } from './limits.js';
import { jsonDepthExceeds, MAX_JSON_DEPTH } from '../json-depth.js';

export interface IsolateRunnerOptions {
  featureId: string;
  limits?: IsolateLimits;
  /** The feature's data layer, read per call (a migrated schema applies at once). */
  data: () => FeatureData | null;
  /** Secrets for actions, read per call. */
  secrets: () => Readonly<Record<string, string>>;
  /** Where `console.*` of handler code goes. */
  log?: (line: string, level: string) => void;
}

/** One running call: what the host needs to answer the isolate's requests for it. */
interface Call {
  id: number;
  kind: HandlerKind;
  name: string;
  ctx: ServerContext;
  slot: IsolateSlot;
  context: IsolateContext;
  /** The top-level call: itself, or the action whose `ctx.runQuery`/`ctx.runMutation` started this one. */
  root: Call;
  db: FeatureDb | null;
  query: QueryFn | null;
  /** CPU used so far, in ms (kept on the root: nested calls spend the top-level call's budget). */
  cpuMs: number;
  /** Wall-clock time (`performance.now()`) by which the call must have settled. */
  deadline: number;
  settled: boolean;
  timer: NodeJS.Timeout | null;
  resolve: (value: RawJson) => void;
  reject: (error: unknown) => void;
  /** Stops outbound requests of an action when the call ends. */
  abort: AbortController | null;
}

const DB_METHODS = new Set(['get', 'query', 'insert', 'patch', 'delete']);

/**
 * Runs a feature's `query`/`mutation`/`action` handlers in its isolate pool.
 *
 * Calls run on the host thread, each slice bounded by the CPU limit (isolated-vm's `timeout`),
 * and the whole call by a wall-clock deadline that disposes the isolate: code after an `await`, or
 * a promise that never settles, cannot outlive it. A mutation holds its transaction only while
 * the call runs, so the deadline also bounds the transaction.
 *
 * `ctx.runQuery`/`ctx.runMutation` of an action run in the action's own isolate and context, on
 * the action's CPU and wall budget: a fan-out of nested calls takes no further isolate.
 */
export class IsolateRunner {
  limits: IsolateLimits;
  #options: IsolateRunnerOptions;
  #pool: IsolatePool;
  #calls = new Map<number, Call>();
  #nextCall = 0;
  #nextTicket = 0;
  #kinds = new Map<string, HandlerKind>();
  #code: string | null = null;
  /** Why the latest bundle could not be built or loaded (the previous one keeps serving). */
  loadError: string | null = null;

  constructor(options: IsolateRunnerOptions) {
    this.#options = options;
    this.limits = options.limits ?? DEFAULT_LIMITS;
    this.#pool = this.#newPool();
  }

  /** Applies new limits (an edited `feature.json`): later calls run in isolates made with them. */
  configure(limits: IsolateLimits = DEFAULT_LIMITS): void {
    if (JSON.stringify(limits) === JSON.stringify(this.limits)) return;
    this.limits = limits;
    const old = this.#pool;
    this.#pool = this.#newPool();
    if (this.#code !== null) this.#pool.load(this.#code);
    old.close();
  }

  /**
   * Switches to a new bundle (from `bundleHandlers`); in-flight calls finish on the old one.
   * Throws if the bundle does not compile.
   */
  load(code: string, kinds: Readonly<Record<string, HandlerKind>>): void {
    this.#pool.load(code);
    this.#code = code;
    this.#kinds = new Map(Object.entries(kinds));
    this.loadError = null;
  }

  /** The pool's isolates: at most `maxIsolates` at any time, nested calls included. */
  stats(): IsolatePoolStats {
    return this.#pool.stats();
  }

  /** The kind of handler `name` in the loaded bundle, if it is one. */
  kindOf(name: string): HandlerKind | undefined {
    return this.#kinds.get(name);
  }

  /** The invocation of handler `name`, for the module executor. */
  invocation(name: string, kind: HandlerKind): Invocation {
    return (ctx, args) => this.run(kind, name, ctx, args);
  }

  /**
   * Runs one handler call; resolves with its result as JSON text. The isolate it takes goes back
   * to the pool when the call settles, on every path (the release is attached before anything
   * else can throw).
   */
  run(kind: HandlerKind, name: string, ctx: ServerContext, args: unknown[]): Promise<RawJson> {
    let argsJson: string;
    try {
      argsJson = this.#argsJson(kind, name, args);
    } catch (error) {
      return Promise.reject(error);
    }
    const pool = this.#pool;
    // Waiting for a free isolate: a caller that gave up (timeout, disconnect) leaves the queue.
    const acquired = pool.acquire(() => ctx.signal);
    if (!(acquired instanceof Promise)) return this.#runOn(pool, acquired, kind, name, ctx, argsJson);
    return acquired.then((slot) => this.#runOn(pool, slot, kind, name, ctx, argsJson));
  }

  #runOn(pool: IsolatePool, slot: IsolateSlot, kind: HandlerKind, name: string, ctx: ServerContext, argsJson: string): Promise<RawJson> {
    let running: Promise<RawJson>;
    try {
      running = this.#start(slot, kind, name, ctx, argsJson, null);
    } catch (error) {
      running = Promise.reject(error);
    }
    return running.finally(() => pool.release(slot));
  }

  /** Starts a call on `slot`: a mutation inside its transaction (rolled back if it fails). */
  #start(slot: IsolateSlot, kind: HandlerKind, name: string, ctx: ServerContext, argsJson: string, parent: Call | null): Promise<RawJson> {
    if (kind !== 'mutation') return this.#execute(slot, kind, name, ctx, argsJson, null, parent);
    const data = this.#data(name);
    return data.client.transaction(data.model.role, (query) => this.#execute(slot, kind, name, ctx, argsJson, query, parent));
  }

  #argsJson(kind: HandlerKind, name: string, args: unknown): string {
    if (this.#kinds.get(name) !== kind) throw new Error(`"${name}" is not a ${kind} handler of feature "${this.#options.featureId}"`);
    if (!Array.isArray(args)) throw new HTTPException(400, { message: `${ErrorText.malformed}: the arguments of ${name} must be an array` });
    let json: string | undefined;
    try {
      json = JSON.stringify(args);
    } catch (error) {
      throw new HTTPException(400, { message: `${ErrorText.malformed}: the arguments of ${name} cannot be sent as JSON (${(error as Error).message})` });
    }
    if (json === undefined || jsonDepthExceeds(json, MAX_JSON_DEPTH + 1)) {
      throw new HTTPException(400, { message: `${ErrorText.malformed}: the arguments of ${name} are nested deeper than ${MAX_JSON_DEPTH} levels` });
    }
    return json;
  }

  #newPool(): IsolatePool {
    return new IsolatePool({
      memoryLimitMb: this.limits.memoryLimitMb,
      maxIsolates: this.limits.maxIsolates,
      maxContexts: 16,
      startTimeoutMs: this.limits.cpuLimitMs,
      onHostCall: (callId, op, payload) => this.#onHostCall(callId, op, payload),
    });
  }

  close(): void {
    for (const call of this.#calls.values()) this.#fail(call, new HTTPException(503, { message: `${ErrorText.unavailable}: the host is shutting down` }));
    this.#pool.close();
  }

  #execute(slot: IsolateSlot, kind: HandlerKind, name: string, ctx: ServerContext, argsJson: string, query: QueryFn | null, parent: Call | null): Promise<RawJson> {
    return new Promise<RawJson>((resolve, reject) => {
      let context: IsolateContext;
      try {
        context = slot.context(identityOf(ctx));
      } catch (error) {
        slot.dispose();
        reject(startFailure(name, error));
        return;
      }
      const budget = kind === 'action' ? this.limits.actionTimeoutMs : this.limits.timeoutMs;
      const root = parent?.root;
      const deadline = Math.min(performance.now() + budget, root?.deadline ?? Infinity);
      const call = { id: ++this.#nextCall, kind, name, ctx, slot, context, db: null, query, cpuMs: 0, deadline, settled: false, timer: null, resolve, reject, abort: null } as Omit<Call, 'root'> as Call;
      call.root = root ?? call;
      this.#calls.set(call.id, call);
      const ctxJson = contextJson(ctx, kind === 'action' ? this.#options.secrets() : undefined);
      let answer: unknown;
      this.#enter(call, (timeout) => {
        answer = context.dispatch.applySync(undefined, [call.id, kind, name, argsJson, ctx.requestId, ctxJson, Date.now(), this.limits.maxResultBytes], { timeout });
      });
      if (call.settled) return;
      // Finished synchronously (the common case for small handlers): no timer, no second crossing.
      if (answer !== undefined) {
        const text = typeof answer === 'string' ? answer : '';
        if (text.charCodeAt(0) === 82 /* R */) this.#succeed(call, text.slice(1));
        else if (text.charCodeAt(0) === 69 /* E */) this.#settle(call, () => reject(reviveError(text.slice(1))));
        else this.#fault(call, untrustedAnswer(call));
        return;
      }
      const wait = Math.max(0, deadline - performance.now());
      call.timer = setTimeout(() => {
        const byRoot = root !== undefined && root.deadline === deadline;
        const within = byRoot ? `the ${this.limits.actionTimeoutMs} ms of the action ${root.name} that ran it` : `${budget} ms`;
        this.#fault(call, new HTTPException(503, { message: `${ErrorText.timedOut}: ${name} did not finish within ${within}` }));
      }, wait);
    });
  }

  /** Runs isolate code for `call` within what is left of its top-level call's CPU budget. */
  #enter(call: Call, run: (timeoutMs: number) => unknown): void {
    const root = call.root;
    const remaining = this.limits.cpuLimitMs - root.cpuMs;
    if (remaining < 1) return this.#fault(call, cpuExceeded(root, this.limits.cpuLimitMs));
    const started = performance.now();
    try {
      run(Math.max(1, Math.floor(remaining)));
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      if (call.settled) return;
      if (call.slot.disposed && /memory limit/i.test(message)) {
        return this.#fault(call, new HTTPException(500, { message: `${root.name} ran out of memory (the limit is ${this.limits.memoryLimitMb} MB); its isolate was replaced` }));
      }
      if (/timed out/i.test(message)) return this.#fault(call, cpuExceeded(root, this.limits.cpuLimitMs));
      return this.#fault(call, new HTTPException(500, { message: `${call.name} failed in its isolate: ${message}` }));
    } finally {
      root.cpuMs += performance.now() - started;
    }
  }

  #onHostCall(callId: unknown, op: unknown, payload: unknown): unknown {
    if (typeof callId !== 'number' || typeof op !== 'string' || typeof payload !== 'string') throw new Error('Malformed host operation');
    const call = this.#calls.get(callId);
    if (op === 'log') {
      const { level, text } = parseLog(payload);
      this.#options.log?.(`${this.#options.featureId} ${call?.name ?? ''}: ${text.length > 2000 ? `${text.slice(0, 2000)}…` : text}`, level);
      return undefined;
    }
    if (!call || call.settled) throw new Error('This call has already ended');
    switch (op) {
      case 'done':
        return this.#succeed(call, payload);
      case 'fail':
        return this.#settle(call, () => call.reject(reviveError(payload)));
      case 'db':
        return this.#async(call, () => this.#db(call, payload));
      case 'fetch':
        if (call.kind !== 'action') throw new Error('fetch is only available in actions');
        return this.#async(call, () => isolateFetch(payload, this.limits.fetch, (call.abort ??= new AbortController()).signal));
      case 'run':
        if (call.kind !== 'action') throw new Error('ctx.runQuery and ctx.runMutation are only available in actions');
        return this.#async(call, () => this.#runNested(call, payload));
      default:
        throw new Error(`Unknown host operation "${op}"`);
    }
  }

  /** `ctx.runQuery`/`ctx.runMutation`: in the action's isolate, on its budget. */
  #runNested(parent: Call, payload: string): Promise<string> {
    const { kind, name, args } = JSON.parse(payload) as { kind: unknown; name: unknown; args: unknown };
    if (kind !== 'query' && kind !== 'mutation') throw new Error('Only queries and mutations can be run from an action');
    if (typeof name !== 'string') throw new Error('ctx.runQuery and ctx.runMutation need a handler name');
    const argsJson = this.#argsJson(kind, name, args);
    if (parent.slot.disposed || parent.settled) throw new Error('The action has ended');
    return this.#start(parent.slot, kind, name, parent.ctx, argsJson, parent).then((raw) => raw.json);
  }

  /** Starts host work for the isolate; its result comes back through `resume(ticket, ...)`. */
  #async(call: Call, work: () => Promise<string | undefined>): number {
    const ticket = ++this.#nextTicket;
    const answer = (ok: boolean, json: string | undefined) => {
      if (call.settled) return;
      this.#enter(call, (timeout) => call.context.resume.applySync(undefined, [ticket, ok, json], { timeout }));
    };
    // Never start host work inside the isolate's own call stack: the isolate is still running.
    Promise.resolve()
      .then(work)
      .then(
        (json) => answer(true, json),
        (error: unknown) => answer(false, JSON.stringify(describeHostError(error))),
      );
    return ticket;
  }

  async #db(call: Call, payload: string): Promise<string> {
    const { method, args } = JSON.parse(payload) as { method: string; args: unknown[] };
    if (!DB_METHODS.has(method) || !Array.isArray(args)) throw new Error(`ctx.db has no method "${method}"`);
    if (call.kind === 'query' && method !== 'get' && method !== 'query') throw new Error(`ctx.db.${method} is not allowed in a query: queries only read; write from a mutation`);
    call.db ??= this.#data(call.name).db(call.ctx, { readOnly: call.kind === 'query', query: call.query ?? undefined });
    const fn = call.db[method as 'get'] as (...a: unknown[]) => Promise<unknown>;
    const result = await fn(...args);
    return JSON.stringify(result ?? null);
  }

  #data(name: string): FeatureData {
    const data = this.#options.data();
    if (!data) throw new Error(`${name} uses ctx.db, but feature "${this.#options.featureId}" has no server/schema.ts defining tables`);
    return data;
  }

  /**
   * A result from the isolate. Its code may have replaced any of its own built-ins, so the text is
   * checked here before it is sent: within the size limit (in bytes) and one JSON value.
   */
  #succeed(call: Call, text: string): undefined {
    const max = this.limits.maxResultBytes;
    const size = text.length > max / 3 ? Buffer.byteLength(text) : text.length;
    if (size > max) {
      return this.#fault(call, new HTTPException(500, { message: `${call.name} returned ${size} bytes of JSON, over the limit of ${max}` }));
    }
    try {
      JSON.parse(text);
    } catch {
      return this.#fault(call, untrustedAnswer(call));
    }
    return this.#settle(call, () => call.resolve(new RawJson(text)));
  }

  #settle(call: Call, finish: () => void): undefined {
    call.settled = true;
    this.#calls.delete(call.id);
    if (call.timer) clearTimeout(call.timer);
    call.abort?.abort();
    finish();
    return undefined;
  }

  #fail(call: Call, error: unknown): void {
    if (!call.settled) this.#settle(call, () => call.reject(error));
  }

  /**
   * A limit was hit or the isolate misbehaved: the isolate is disposed (nothing of it runs again)
   * and every call on it fails, the action and the queries it runs alike.
   */
  #fault(call: Call, error: unknown): undefined {
    call.slot.dispose();
    this.#fail(call, error);
    for (const other of [...this.#calls.values()]) if (other.slot === call.slot) this.#fail(other, error);
    return undefined;
  }
}

/** Calls of the same user in the same tenant share a context; no one else's calls see it. */
function identityOf(ctx: ServerContext): string {
  return `${ctx.visibility.tenantId ?? ''}\n${ctx.auth.userId ?? ''}`;
}

/** The caller part of `ctx` (the same for a caller's calls, so the isolate can reuse its copy). */
function contextJson(ctx: ServerContext, secrets: Readonly<Record<string, string>> | undefined): string {
  const { featureId, userRoles, claims, visibility, auth } = ctx;
  return JSON.stringify(secrets ? { featureId, userRoles, claims, visibility, auth, secrets } : { featureId, userRoles, claims, visibility, auth });
}

function untrustedAnswer(call: Call): HTTPException {
  return new HTTPException(500, { message: `${call.name} failed in its isolate: it did not answer with a JSON result; its isolate was replaced` });
}

function parseLog(payload: string): { level: string; text: string } {
  try {
    const { level, text } = JSON.parse(payload) as { level: unknown; text: unknown };
    return { level: typeof level === 'string' ? level : 'log', text: typeof text === 'string' ? text : String(text) };
  } catch {
    return { level: 'log', text: '(unreadable log line)' };
  }
}

function cpuExceeded(call: Call, limit: number): HTTPException {
  return new HTTPException(503, { message: `${ErrorText.timedOut}: ${call.name} used more than ${limit} ms of CPU` });
}

function startFailure(name: string, error: unknown): Error {
  const message = error instanceof Error ? error.message : String(error);
  return new HTTPException(500, { message: `${name}: the handler bundle failed to start in its isolate: ${message}` });
}

/** An error as the isolate described it; `statusCode` kept when it is a valid error status. */
function reviveError(json: string): Error {
  let described: { message?: unknown; status?: unknown; name?: unknown; stack?: unknown };
  try {
    described = JSON.parse(json) as typeof described;
  } catch {
    described = {};
  }
  const error = new Error(typeof described.message === 'string' ? described.message : 'Handler failed');
  const status = described.status;
  if (typeof status === 'number' && Number.isInteger(status) && status >= 400 && status <= 599) Object.assign(error, { statusCode: status });
  if (typeof described.name === 'string') error.name = described.name;
  if (typeof described.stack === 'string') error.stack = described.stack;
  return error;
}

function describeHostError(error: unknown): { message: string; status?: number } {
  if (error instanceof HTTPException) return { message: error.message, status: error.status };
  if (error instanceof Error) {
    const status = (error as { statusCode?: unknown }).statusCode;
    return typeof status === 'number' ? { message: error.message, status } : { message: error.message };
  }
  return { message: String(error) };
}
