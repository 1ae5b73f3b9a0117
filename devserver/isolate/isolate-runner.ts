import { HTTPException } from 'hono/http-exception';
import type { HandlerKind } from '../../runtime/handlers.js';
import { ErrorText } from '../../runtime/protocol.js';
import type { FeatureDb, ServerContext } from '../../runtime/server.js';
import type { QueryFn } from '../db/sql-client.js';
import { RawJson, type Invocation } from '../executor.js';
import type { FeatureData } from '../sql/feature-data.js';
import { isolateFetch } from './isolate-fetch.js';
import { IsolatePool, type IsolateContext, type IsolateSlot } from './isolate-pool.js';
import { DEFAULT_LIMITS, type IsolateLimits } from './limits.js';

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
  db: FeatureDb | null;
  query: QueryFn | null;
  cpuMs: number;
  settled: boolean;
  timer: NodeJS.Timeout | null;
  resolve: (value: RawJson) => void;
  reject: (error: unknown) => void;
  /** Stops outbound requests of an action when the call ends. */
  abort: AbortController | null;
  /** Gives the isolate back to the pool (`null` when the caller does it). */
  release: (() => void) | null;
}

const DB_METHODS = new Set(['get', 'query', 'insert', 'patch', 'delete']);

/**
 * Runs a feature's `query`/`mutation`/`action` handlers in its isolate pool.
 *
 * Calls run on the host thread, each slice bounded by the CPU limit (isolated-vm's `timeout`),
 * and the whole call by a wall-clock deadline that disposes the isolate: code after an `await`, or
 * a promise that never settles, cannot outlive it. A mutation holds its transaction only while
 * the call runs, so the deadline also bounds the transaction.
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

  /** The kind of handler `name` in the loaded bundle, if it is one. */
  kindOf(name: string): HandlerKind | undefined {
    return this.#kinds.get(name);
  }

  /** The invocation of handler `name`, for the module executor. */
  invocation(name: string, kind: HandlerKind): Invocation {
    return (ctx, args) => this.run(kind, name, ctx, args);
  }

  /** Runs one handler call; resolves with its result as JSON text. */
  run(kind: HandlerKind, name: string, ctx: ServerContext, args: unknown[], nested = false): Promise<RawJson> {
    if (this.#kinds.get(name) !== kind) return Promise.reject(new Error(`"${name}" is not a ${kind} handler of feature "${this.#options.featureId}"`));
    const pool = this.#pool;
    const acquired = pool.acquire(nested);
    if (acquired instanceof Promise) return acquired.then((slot) => this.#runOn(pool, slot, kind, name, ctx, args));
    return this.#runOn(pool, acquired, kind, name, ctx, args);
  }

  /** The slot goes back to the pool when the call settles (at once for a synchronous handler). */
  #runOn(pool: IsolatePool, slot: IsolateSlot, kind: HandlerKind, name: string, ctx: ServerContext, args: unknown[]): Promise<RawJson> {
    const release = () => pool.release(slot);
    if (kind !== 'mutation') return this.#execute(slot, kind, name, ctx, args, null, release);
    let data: FeatureData;
    try {
      data = this.#data(name);
    } catch (error) {
      release();
      return Promise.reject(error);
    }
    // The transaction ends after the call settled (commit or rollback); only then is the slot free.
    return data.client.transaction(data.model.role, (query) => this.#execute(slot, kind, name, ctx, args, query, null)).finally(release);
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

  #execute(slot: IsolateSlot, kind: HandlerKind, name: string, ctx: ServerContext, args: unknown[], query: QueryFn | null, release: (() => void) | null): Promise<RawJson> {
    return new Promise<RawJson>((resolve, reject) => {
      let context: IsolateContext;
      try {
        context = slot.context(identityOf(ctx));
      } catch (error) {
        slot.dispose();
        release?.();
        reject(startFailure(name, error));
        return;
      }
      const call: Call = { id: ++this.#nextCall, kind, name, ctx, slot, context, db: null, query, cpuMs: 0, settled: false, timer: null, resolve, reject, abort: null, release };
      this.#calls.set(call.id, call);
      const argsJson = JSON.stringify(args);
      const ctxJson = contextJson(ctx, kind === 'action' ? this.#options.secrets() : undefined);
      let answer: unknown;
      this.#enter(call, () => {
        answer = context.dispatch.applySync(undefined, [call.id, kind, name, argsJson, ctx.requestId, ctxJson, Date.now(), this.limits.maxResultBytes], { timeout: this.limits.cpuLimitMs });
      });
      if (call.settled) return;
      // Finished synchronously (the common case for small handlers): no timer, no second crossing.
      if (typeof answer === 'string') {
        const text: string = answer;
        if (text.charCodeAt(0) === 82 /* R */) this.#settle(call, () => resolve(new RawJson(text.slice(1))));
        else this.#settle(call, () => reject(reviveError(text.slice(1))));
        return;
      }
      const deadline = kind === 'action' ? this.limits.actionTimeoutMs : this.limits.timeoutMs;
      call.timer = setTimeout(() => this.#fault(call, new HTTPException(503, { message: `${ErrorText.timedOut}: ${name} did not finish within ${deadline} ms` })), deadline);
    });
  }

  /** Runs isolate code for `call`, counting its CPU time; a limit hit ends the call. */
  #enter(call: Call, run: () => unknown): void {
    const remaining = this.limits.cpuLimitMs - call.cpuMs;
    if (remaining <= 0) return this.#fault(call, cpuExceeded(call, this.limits.cpuLimitMs));
    const started = performance.now();
    try {
      run();
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      if (call.settled) return;
      if (call.slot.disposed && /memory limit/i.test(message)) {
        return this.#fault(call, new HTTPException(500, { message: `${call.name} ran out of memory (the limit is ${this.limits.memoryLimitMb} MB); its isolate was replaced` }));
      }
      if (/timed out/i.test(message)) return this.#fault(call, cpuExceeded(call, this.limits.cpuLimitMs));
      return this.#fault(call, new HTTPException(500, { message: `${call.name} failed in its isolate: ${message}` }));
    } finally {
      call.cpuMs += performance.now() - started;
    }
  }

  #onHostCall(callId: number, op: string, payload: string): unknown {
    const call = this.#calls.get(callId);
    if (op === 'log') {
      const { level, text } = JSON.parse(payload) as { level: string; text: string };
      this.#options.log?.(`${this.#options.featureId} ${call?.name ?? ''}: ${text.length > 2000 ? `${text.slice(0, 2000)}…` : text}`, level);
      return undefined;
    }
    if (!call || call.settled) throw new Error('This call has already ended');
    switch (op) {
      case 'done':
        return this.#settle(call, () => call.resolve(new RawJson(payload)));
      case 'fail':
        return this.#settle(call, () => call.reject(reviveError(payload)));
      case 'db':
        return this.#async(call, () => this.#db(call, payload));
      case 'fetch':
        if (call.kind !== 'action') throw new Error('fetch is only available in actions');
        return this.#async(call, () => isolateFetch(payload, this.limits.fetch, (call.abort ??= new AbortController()).signal));
      case 'run':
        if (call.kind !== 'action') throw new Error('ctx.runQuery and ctx.runMutation are only available in actions');
        return this.#async(call, () => {
          const { kind, name, args } = JSON.parse(payload) as { kind: HandlerKind; name: string; args: unknown[] };
          if (kind !== 'query' && kind !== 'mutation') throw new Error('Only queries and mutations can be run from an action');
          return this.run(kind, name, call.ctx, args, true).then((raw) => raw.json);
        });
      default:
        throw new Error(`Unknown host operation "${op}"`);
    }
  }

  /** Starts host work for the isolate; its result comes back through `resume(ticket, ...)`. */
  #async(call: Call, work: () => Promise<string | undefined>): number {
    const ticket = ++this.#nextTicket;
    const answer = (ok: boolean, json: string | undefined) => {
      if (call.settled) return;
      this.#enter(call, () => call.context.resume.applySync(undefined, [ticket, ok, json], { timeout: Math.max(1, Math.ceil(this.limits.cpuLimitMs - call.cpuMs)) }));
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

  #settle(call: Call, finish: () => void): undefined {
    call.settled = true;
    this.#calls.delete(call.id);
    if (call.timer) clearTimeout(call.timer);
    call.abort?.abort();
    call.release?.();
    finish();
    return undefined;
  }

  #fail(call: Call, error: unknown): void {
    if (!call.settled) this.#settle(call, () => call.reject(error));
  }

  /** A limit was hit: the isolate is disposed (nothing of it runs again) and the call fails. */
  #fault(call: Call, error: unknown): void {
    call.slot.dispose();
    this.#fail(call, error);
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
