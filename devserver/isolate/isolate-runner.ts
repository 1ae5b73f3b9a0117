import type { HandlerKind } from '../../runtime/handlers.js';
import { DEFAULT_BODY_LIMIT } from '../../runtime/protocol.js';
import { RequestError } from '../../runtime/request-error.js';
import type { FeatureDb, ServerContext } from '../../runtime/server.js';
import type { QueryFn } from '../data/sql-client.js';
import { RawJson } from '../common/raw-json.js';
import type { FeatureData } from '../data/feature-data.js';
import { isolateFetch } from './isolate-fetch.js';
import { IsolatePool, type IsolateContext, type IsolatePoolStats, type IsolateSlot } from './isolate-pool.js';
import { DEFAULT_LIMITS, type IsolateLimits } from './limits.js';
import { jsonDepthExceeds, MAX_JSON_DEPTH } from '../common/json-depth.js';
import { isErrorStatus } from '../common/http-status.js';

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
  context: IsolateContext | null;
  /** The top-level call: itself, or the action whose `ctx.runQuery`/`ctx.runMutation` started this one. */
  root: Call;
  db: FeatureDb | null;
  query: QueryFn | null;
  /** The isolate's CPU time when the top-level call started, in ms (nested calls spend its budget). */
  cpuStart: number;
  /** Wall-clock time (`performance.now()`) by which the call must have settled. */
  deadline: number;
  /** Host operations under way and log lines printed, counted on the top-level call. */
  ops: number;
  logs: number;
  settled: boolean;
  timer: NodeJS.Timeout | null;
  resolve: (value: RawJson) => void;
  reject: (error: unknown) => void;
  /** Stops outbound requests of an action when the call ends. */
  abort: AbortController | null;
}

const DB_METHODS = new Set(['get', 'query', 'insert', 'patch', 'delete']);
/** Host operations one top-level call may have under way at once (the prelude holds to 1000 per call). */
const MAX_OPS = 2000;
/** Log lines printed per top-level call. */
const MAX_LOG_LINES = 1000;
/** Largest error description the isolate may send (the prelude cuts message and stack to 16 KiB). */
const MAX_FAILURE_CHARS = 256 * 1024;

/**
 * Runs a feature's `query`/`mutation`/`action` handlers in its isolate pool.
 *
 * Isolate code runs on isolated-vm's threads, never on the host's: the host keeps serving while a
 * handler computes. Each call has a CPU budget (the isolate's own CPU clock, checked after every
 * slice and enforced within a slice by isolated-vm's `timeout`) and a wall-clock deadline that
 * disposes the isolate: code after an `await`, a promise that never settles, or a built-in that
 * cannot be interrupted cannot outlive it. A mutation holds its transaction only while the call
 * runs, so the deadline also bounds the transaction.
 *
 * `ctx.runQuery`/`ctx.runMutation` of an action run in the action's own isolate and context, on
 * the action's CPU and wall budget: a fan-out of nested calls takes no further isolate, and they
 * end when the action ends.
 */
export class IsolateRunner {
  limits: IsolateLimits;
  #options: IsolateRunnerOptions;
  #pool: IsolatePool;
  #calls = new Map<number, Call>();
  #nextCall = 0;
  #kinds = new Map<string, HandlerKind>();
  #code: string | null = null;
  /** Why the latest bundle could not be built or loaded (the previous one keeps serving). */
  loadError: string | null = null;
  #warm = true;

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
    if (this.#code !== null) this.#pool.load(this.#code, { warm: this.#warm });
    old.close();
  }

  /**
   * Switches to a new bundle (from `bundleHandlers`); in-flight calls finish on the old one.
   * Throws if the bundle does not compile.
   */
  load(code: string, kinds: Readonly<Record<string, HandlerKind>>, { warm = true }: { warm?: boolean } = {}): void {
    // The same bundle again (a dev reload after a save elsewhere): the isolates and their module
    // state stay, as Vite keeps the modules a save did not touch.
    const same = code === this.#code && warm === this.#warm && this.#pool.loaded;
    if (same && JSON.stringify(kinds) === JSON.stringify(Object.fromEntries(this.#kinds))) {
      this.loadError = null;
      return;
    }
    this.#pool.load(code, { warm });
    this.#warm = warm;
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

  /**
   * Runs one handler call; resolves with its result as JSON text. The isolate it takes goes back
   * to the pool once the call settled and nothing of it runs in the isolate any more, on every
   * path (the release is attached before anything else can throw).
   */
  run(kind: HandlerKind, name: string, ctx: ServerContext, args: unknown[]): Promise<RawJson> {
    let argsJson: string;
    try {
      argsJson = this.#argsJson(kind, name, args, DEFAULT_BODY_LIMIT);
    } catch (error) {
      return Promise.reject(error);
    }
    const pool = this.#pool;
    let acquired: ReturnType<IsolatePool['acquire']>;
    try {
      // Waiting for a free isolate: a caller that gave up (timeout, disconnect) leaves the queue.
      acquired = pool.acquire(() => ctx.signal);
    } catch (error) {
      return Promise.reject(error);
    }
    if (!(acquired instanceof Promise)) return this.#runOn(pool, acquired, kind, name, ctx, argsJson);
    return acquired.then((slot) => this.#runOn(pool, slot, kind, name, ctx, argsJson));
  }

  #runOn(
    pool: IsolatePool,
    slot: IsolateSlot,
    kind: HandlerKind,
    name: string,
    ctx: ServerContext,
    argsJson: string,
  ): Promise<RawJson> {
    let running: Promise<RawJson>;
    try {
      running = this.#start(slot, kind, name, ctx, argsJson, null);
    } catch (error) {
      running = Promise.reject(error);
    }
    const release = () => this.#release(pool, slot);
    return running.then(
      (value) => (release(), value),
      (error: unknown) => {
        release();
        throw error;
      },
    );
  }

  /**
   * Gives the isolate back once nothing of the call runs in it any more. Code still running after
   * the call settled gets what is left of the CPU budget, then the isolate is disposed.
   */
  #release(pool: IsolatePool, slot: IsolateSlot): void {
    let done = false;
    const release = () => {
      if (done) return;
      done = true;
      clearTimeout(watchdog);
      pool.release(slot);
    };
    const watchdog = setTimeout(() => {
      slot.dispose();
      release();
    }, this.limits.cpuLimitMs);
    void slot.whenIdle().then(release);
  }

  /** Starts a call on `slot`: a mutation inside its transaction (rolled back if it fails). */
  #start(
    slot: IsolateSlot,
    kind: HandlerKind,
    name: string,
    ctx: ServerContext,
    argsJson: string,
    parent: Call | null,
  ): Promise<RawJson> {
    const data = this.#options.data();
    // Without tables a mutation has nothing to commit: it runs like an action, and its ctx.db says why.
    if (kind !== 'mutation' || !data) return this.#execute(slot, kind, name, ctx, argsJson, null, parent);
    return data.client.transaction(
      data.model.role,
      (query) => {
        // Waiting for the transaction took time: the action that runs this may have ended meanwhile.
        if (parent && (parent.settled || slot.disposed))
          return Promise.reject(new Error(`${name} was not run: the action that ran it has ended`));
        return this.#execute(slot, kind, name, ctx, argsJson, query, parent);
      },
      { tenantId: ctx.visibility?.tenantId },
    );
  }

  #argsJson(kind: HandlerKind, name: string, args: unknown, maxBytes: number): string {
    if (this.#kinds.get(name) !== kind)
      throw new Error(`"${name}" is not a ${kind} handler of feature "${this.#options.featureId}"`);
    if (!Array.isArray(args)) throw RequestError.of('malformed', `the arguments of ${name} must be an array`);
    let json: string | undefined;
    try {
      json = JSON.stringify(args);
    } catch (error) {
      throw RequestError.of(
        'malformed',
        `the arguments of ${name} cannot be sent as JSON (${(error as Error).message})`,
      );
    }
    if (json === undefined || jsonDepthExceeds(json, MAX_JSON_DEPTH + 1)) {
      throw RequestError.of('malformed', `the arguments of ${name} are nested deeper than ${MAX_JSON_DEPTH} levels`);
    }
    if (json.length > maxBytes || Buffer.byteLength(json) > maxBytes) {
      throw RequestError.of('payloadTooLarge', `the arguments of ${name} are over ${maxBytes} bytes`);
    }
    return json;
  }

  /**
   * Largest result or message of isolate code, in characters: `maxResultBytes`, and at most a
   * quarter of the isolate's memory, since each crosses as a copy made in the isolate's heap.
   */
  #messageLimit(): number {
    return Math.min(this.limits.maxResultBytes, this.limits.memoryLimitMb * 256 * 1024);
  }

  #newPool(): IsolatePool {
    return new IsolatePool({
      memoryLimitMb: this.limits.memoryLimitMb,
      maxIsolates: this.limits.maxIsolates,
      // A context holds the bundle's module state: fewer of them in a small isolate.
      maxContexts: Math.max(2, Math.min(16, Math.floor(this.limits.memoryLimitMb / 8))),
      startTimeoutMs: this.limits.cpuLimitMs,
      onHostCall: (callId, op, payload, ticket) => this.#onHostCall(callId, op, payload, ticket),
    });
  }

  close(): void {
    for (const call of this.#calls.values())
      this.#fail(call, RequestError.of('unavailable', `the host is shutting down`));
    this.#pool.close();
  }

  #execute(
    slot: IsolateSlot,
    kind: HandlerKind,
    name: string,
    ctx: ServerContext,
    argsJson: string,
    query: QueryFn | null,
    parent: Call | null,
  ): Promise<RawJson> {
    return new Promise<RawJson>((resolve, reject) => {
      const budget = kind === 'action' ? this.limits.actionTimeoutMs : this.limits.timeoutMs;
      const root = parent?.root;
      const deadline = Math.min(performance.now() + budget, root?.deadline ?? Infinity);
      const call = {
        id: ++this.#nextCall,
        kind,
        name,
        ctx,
        slot,
        context: null,
        db: null,
        query,
        cpuStart: root ? root.cpuStart : slot.cpuTimeMs(),
        deadline,
        ops: 0,
        logs: 0,
        settled: false,
        timer: null,
        resolve,
        reject,
        abort: null,
      } as Omit<Call, 'root'> as Call;
      call.root = root ?? call;
      this.#calls.set(call.id, call);
      call.timer = setTimeout(() => {
        const byRoot = root !== undefined && root.deadline === deadline;
        const within = byRoot
          ? `the ${this.limits.actionTimeoutMs} ms of the action ${root.name} that ran it`
          : `${budget} ms`;
        this.#fault(call, RequestError.of('timedOut', `${name} did not finish within ${within}`));
      }, deadline - performance.now());
      const dispatch = (context: IsolateContext) => {
        if (call.settled) return;
        call.context = context;
        const ctxJson = contextJson(ctx, kind === 'action' ? this.#options.secrets() : undefined);
        const args: [number, string, string, string, string, string, number, number] = [
          call.id,
          kind,
          name,
          argsJson,
          ctx.requestId,
          ctxJson,
          Date.now(),
          this.#messageLimit(),
        ];
        this.#enter(
          call,
          (timeout) => context.dispatch.apply(undefined, args, { timeout }),
          (answer) => this.#answered(call, answer),
        );
      };
      let context: IsolateContext | Promise<IsolateContext>;
      try {
        context = slot.context(identityOf(ctx));
      } catch (error) {
        context = Promise.reject(error);
      }
      if (!(context instanceof Promise)) return dispatch(context);
      context.then(dispatch, (error: unknown) => {
        if (call.settled) return;
        if (isMemoryFault(slot, error)) return this.#fault(call, outOfMemory(call.root, this.limits.memoryLimitMb));
        this.#fault(call, startFailure(name, error));
      });
    });
  }

  /** What `dispatch` answered: a result or error at once, or nothing (completion comes later). */
  #answered(call: Call, answer: unknown): void {
    if (answer === undefined) return;
    const text = typeof answer === 'string' ? answer : '';
    if (text.charCodeAt(0) === 82 /* R */) this.#succeed(call, text.slice(1));
    else if (text.charCodeAt(0) === 69 /* E */) this.#failWith(call, text.slice(1));
    else this.#fault(call, untrustedAnswer(call));
  }

  /**
   * Runs a slice of isolate code for `call` (a dispatch or a resume) within what is left of its
   * top-level call's CPU budget; `then` gets the slice's value unless the call ended meanwhile.
   */
  #enter(call: Call, slice: (timeoutMs: number) => Promise<unknown>, then: (value: unknown) => void): void {
    const root = call.root;
    const remaining = this.limits.cpuLimitMs - (call.slot.cpuTimeMs() - root.cpuStart);
    if (remaining < 1) return void this.#fault(call, cpuExceeded(root, this.limits.cpuLimitMs));
    let running: Promise<unknown>;
    try {
      running = slice(Math.ceil(remaining));
    } catch (error) {
      running = Promise.reject(error);
    }
    call.slot.track(running).then(
      (value) => {
        if (call.settled) return;
        if (call.slot.cpuTimeMs() - root.cpuStart > this.limits.cpuLimitMs)
          return void this.#fault(call, cpuExceeded(root, this.limits.cpuLimitMs));
        then(value);
      },
      (error: unknown) => {
        if (call.settled) return;
        const message = error instanceof Error ? error.message : String(error);
        if (isMemoryFault(call.slot, error))
          return void this.#fault(call, outOfMemory(root, this.limits.memoryLimitMb));
        if (/timed out/i.test(message)) return void this.#fault(call, cpuExceeded(root, this.limits.cpuLimitMs));
        this.#fault(call, internal(`${call.name} failed in its isolate: ${message}`));
      },
    );
  }

  /** A message from isolate code (a task on the host's event loop). Malformed ones are ignored. */
  #onHostCall(callId: unknown, op: unknown, payload: unknown, ticket: unknown): void {
    if (
      typeof callId !== 'number' ||
      typeof op !== 'string' ||
      typeof payload !== 'string' ||
      typeof ticket !== 'number'
    )
      return;
    const call = this.#calls.get(callId);
    // The prelude holds messages to this size; a larger one is not read at all.
    if (payload.length > this.#messageLimit() + 1024) return void (call && this.#fault(call, untrustedAnswer(call)));
    if (op === 'log') return this.#log(call, payload);
    if (!call || call.settled) return;
    switch (op) {
      case 'done':
        return void this.#succeed(call, payload);
      case 'fail':
        return this.#failWith(call, payload);
      case 'db':
        return this.#async(call, ticket, () => this.#db(call, payload));
      case 'fetch':
        return this.#async(call, ticket, () => {
          if (call.kind !== 'action') throw new Error('fetch is only available in actions');
          return isolateFetch(payload, this.limits.fetch, (call.abort ??= new AbortController()).signal);
        });
      case 'run':
        return this.#async(call, ticket, () => {
          if (call.kind !== 'action') throw new Error('ctx.runQuery and ctx.runMutation are only available in actions');
          return this.#runNested(call, payload);
        });
      default:
        this.#fault(call, untrustedAnswer(call));
    }
  }

  #log(call: Call | undefined, payload: string): void {
    if (call) {
      if (call.root.logs >= MAX_LOG_LINES) return;
      call.root.logs++;
    }
    const { level, text } = parseLog(payload);
    this.#options.log?.(
      `${this.#options.featureId} ${call?.name ?? ''}: ${text.length > 2000 ? `${text.slice(0, 2000)}…` : text}`,
      level,
    );
  }

  /** `ctx.runQuery`/`ctx.runMutation`: in the action's isolate, on its budget. */
  #runNested(parent: Call, payload: string): Promise<string> {
    const { kind, name, args } = JSON.parse(payload) as { kind: unknown; name: unknown; args: unknown };
    if (kind !== 'query' && kind !== 'mutation')
      throw new Error('Only queries and mutations can be run from an action');
    if (typeof name !== 'string') throw new Error('ctx.runQuery and ctx.runMutation need a handler name');
    const argsJson = this.#argsJson(kind, name, args, DEFAULT_BODY_LIMIT);
    if (parent.slot.disposed || parent.settled) throw new Error('The action has ended');
    return this.#start(parent.slot, kind, name, parent.ctx, argsJson, parent).then((raw) => raw.json);
  }

  /** Host work for the isolate; its answer goes back as `resume(ticket, ...)`. */
  #async(call: Call, ticket: number, work: () => Promise<string | undefined>): void {
    const root = call.root;
    if (root.ops >= MAX_OPS)
      return void this.#fault(call, internal(`${call.name} started more than ${MAX_OPS} ctx operations at once`));
    root.ops++;
    const answer = (ok: boolean, json: string | undefined) => {
      root.ops--;
      if (call.settled || !call.context) return;
      // What goes into the isolate is bounded too: a copy larger than its heap's slack is fatal.
      if (ok && json !== undefined && json.length > this.#messageLimit()) {
        ok = false;
        json = JSON.stringify({
          message: `The answer to ${call.name}'s ctx operation has ${json.length} characters, over the limit of ${this.#messageLimit()}`,
        });
      }
      const context = call.context;
      this.#enter(
        call,
        (timeout) => context.resume.apply(undefined, [ticket, ok, json], { timeout }),
        () => {},
      );
    };
    Promise.resolve()
      .then(work)
      .then(
        (json) => answer(true, json),
        (error: unknown) => answer(false, JSON.stringify(describeHostError(error))),
      );
  }

  async #db(call: Call, payload: string): Promise<string> {
    const { method, args } = JSON.parse(payload) as { method: string; args: unknown[] };
    if (!DB_METHODS.has(method) || !Array.isArray(args)) throw new Error(`ctx.db has no method "${method}"`);
    if (call.kind === 'query' && method !== 'get' && method !== 'query')
      throw new Error(`ctx.db.${method} is not allowed in a query: queries only read; write from a mutation`);
    if (call.kind === 'action')
      throw new Error('ctx.db is not available in actions: use ctx.runQuery or ctx.runMutation');
    call.db ??= this.#data(call.name).db(call.ctx, { readOnly: call.kind === 'query', query: call.query ?? undefined });
    const fn = call.db[method as 'get'] as (...a: unknown[]) => Promise<unknown>;
    const result = await fn(...args);
    return JSON.stringify(result ?? null);
  }

  #data(name: string): FeatureData {
    const data = this.#options.data();
    if (!data)
      throw new Error(
        `${name} uses ctx.db, but feature "${this.#options.featureId}" has no server/schema.ts defining tables`,
      );
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
      return this.#fault(call, internal(`${call.name} returned ${size} bytes of JSON, over the limit of ${max}`));
    }
    try {
      JSON.parse(text);
    } catch {
      return this.#fault(call, untrustedAnswer(call));
    }
    return this.#settle(call, () => call.resolve(new RawJson(text)));
  }

  #failWith(call: Call, description: string): void {
    const error = description.length > MAX_FAILURE_CHARS ? internal(`${call.name} failed`) : reviveError(description);
    this.#settle(call, () => call.reject(error));
  }

  #settle(call: Call, finish: () => void): undefined {
    call.settled = true;
    this.#calls.delete(call.id);
    if (call.timer) clearTimeout(call.timer);
    call.abort?.abort();
    finish();
    if (call.root === call) {
      // Nested calls end with the action that ran them (their transactions roll back).
      for (const other of Array.from(this.#calls.values())) {
        if (other.root === call)
          this.#fail(other, new Error(`${other.name} was stopped: the action ${call.name} that ran it has ended`));
      }
    }
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
    for (const other of Array.from(this.#calls.values())) if (other.slot === call.slot) this.#fail(other, error);
    return undefined;
  }
}

/** Calls of the same user in the same tenant share a context; no one else's calls see it. */
function identityOf(ctx: ServerContext): string {
  return JSON.stringify([ctx.visibility.tenantId, ctx.auth.userId]);
}

/** The caller part of `ctx` (the same for a caller's calls, so the isolate can reuse its copy). */
function contextJson(ctx: ServerContext, secrets: Readonly<Record<string, string>> | undefined): string {
  const { featureId, userRoles, claims, visibility, auth } = ctx;
  return JSON.stringify(
    secrets
      ? { featureId, userRoles, claims, visibility, auth, secrets }
      : { featureId, userRoles, claims, visibility, auth },
  );
}

function untrustedAnswer(call: Call): Error {
  return internal(`${call.name} failed in its isolate: it did not answer with a JSON result; its isolate was replaced`);
}

/** A 500 whose message reaches the client only in dev (it may carry what isolate code said). */
function internal(message: string): Error {
  return new RequestError(500, message);
}

function outOfMemory(root: Call, limitMb: number): Error {
  return internal(`${root.name} ran out of memory (the limit is ${limitMb} MB); its isolate was replaced`);
}

function isMemoryFault(slot: IsolateSlot, error: unknown): boolean {
  return slot.disposed && /memory limit/i.test(error instanceof Error ? error.message : String(error));
}

function parseLog(payload: string): { level: string; text: string } {
  try {
    const { level, text } = JSON.parse(payload) as { level: unknown; text: unknown };
    return { level: typeof level === 'string' ? level : 'log', text: typeof text === 'string' ? text : String(text) };
  } catch {
    return { level: 'log', text: '(unreadable log line)' };
  }
}

function cpuExceeded(call: Call, limit: number): RequestError {
  return RequestError.of('timedOut', `${call.name} used more than ${limit} ms of CPU`);
}

function startFailure(name: string, error: unknown): Error {
  const message = error instanceof Error ? error.message : String(error);
  return internal(`${name}: the handler bundle failed to start in its isolate: ${message}`);
}

/**
 * An error as the isolate described it, like one a plain function throws: `statusCode` kept when
 * it is a valid error status, so the host answers as for any server function's own error.
 */
function reviveError(json: string): Error {
  let described: { message?: unknown; status?: unknown; name?: unknown; stack?: unknown };
  try {
    described = JSON.parse(json) as typeof described;
  } catch {
    described = {};
  }
  // What the host keeps and logs is bounded whatever the isolate sent.
  const cut = (text: string, max: number) => (text.length > max ? `${text.slice(0, max)}…` : text);
  const error = new Error(typeof described.message === 'string' ? cut(described.message, 16384) : 'Handler failed');
  const status = described.status;
  if (isErrorStatus(status)) Object.assign(error, { statusCode: status });
  if (typeof described.name === 'string') error.name = cut(described.name, 256);
  error.stack = typeof described.stack === 'string' ? cut(described.stack, 16384) : `${error.name}: ${error.message}`;
  return error;
}

function describeHostError(error: unknown): { message: string; status?: number } {
  if (error instanceof RequestError) return { message: error.message, status: error.status };
  if (error instanceof Error) {
    const status = (error as { statusCode?: unknown }).statusCode;
    return typeof status === 'number' ? { message: error.message, status } : { message: error.message };
  }
  return { message: String(error) };
}
