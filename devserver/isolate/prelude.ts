/**
 * The runtime inside each isolate context, installed before the feature's bundle runs. It is
 * compiled with the host but runs *in the isolate*: it is sent as source (`isolatePrelude.toString()`)
 * and may use nothing from outside its own body.
 *
 * It receives one host reference (`host`) and keeps it in this closure: feature code never sees
 * it. Every host operation is a message `host(callId, op, payloadJson, ticket)` that the isolate
 * does not wait for; operations with an answer carry a ticket, which the host later settles with
 * `resume(ticket, ok, json)`.
 *
 * Feature code runs in the same context and may replace any built-in (`String.prototype.slice`,
 * `Function.prototype.call`, `Promise.resolve`...). So everything here that runs after the bundle
 * was loaded uses only functions captured before it ran, called through the captured
 * `Reflect.apply`. The host checks what comes back all the same (see `isolate-runner.ts`).
 */

/* eslint-disable @typescript-eslint/no-explicit-any -- the isolate side is plain JavaScript. */

/** The isolate's view of the host reference (isolated-vm's `Reference`). */
interface HostReference {
  applyIgnored(receiver: undefined, args: unknown[]): void;
}

/** Functions the host calls; returned by the prelude as references. */
export interface PreludeExports {
  /** Takes the bundle's exports from the global the bundle set, and hides them. */
  install(): string;
  /**
   * Runs one call. A call that finishes synchronously returns `R<json>` (result) or `E<json>`
   * (error) at once; otherwise it returns nothing and completion arrives as `done`/`fail`.
   * `ctxJson` is the caller part of `ctx` (without `requestId`); the same string as last time
   * reuses the parsed copy. Several calls may be under way in one context at once (an action and
   * the queries it runs), each with its own `callId`.
   */
  dispatch(
    callId: number,
    kind: string,
    name: string,
    argsJson: string,
    requestId: string,
    ctxJson: string,
    now: number,
    maxResultChars: number,
  ): string | undefined;
  /** Settles a pending host operation. */
  resume(ticket: number, ok: boolean, json: string | undefined): void;
}

export function isolatePrelude(hostRef: HostReference): PreludeExports {
  'use strict';
  const g: any = globalThis;
  const apply = Reflect.apply;
  const construct = Reflect.construct;
  const hostSend = hostRef.applyIgnored.bind(hostRef);
  const stringify = JSON.stringify;
  const parse = JSON.parse;
  const hasOwn = Object.prototype.hasOwnProperty;
  const freeze = Object.freeze;
  const assign = Object.assign;
  const keys = Object.keys;
  const entries = Object.entries;
  const isArray = Array.isArray;
  const createObject = Object.create;
  const defineProperty = Object.defineProperty;
  const RealDate = Date;
  const realNow = Date.now;
  const realRandom = Math.random;
  const imul = Math.imul;
  const PromiseCtor = Promise;
  const promiseReject = Promise.reject;
  const then = Promise.prototype.then;
  const MapCtor = Map;
  const mapGet = Map.prototype.get;
  const mapSet = Map.prototype.set;
  const mapDelete = Map.prototype.delete;
  const arrayMap = Array.prototype.map;
  const ErrorCtor = Error;
  const TypeErrorCtor = TypeError;
  const RangeErrorCtor = RangeError;
  const StringCtor = String;
  const toLowerCase = String.prototype.toLowerCase;
  const stringSlice = String.prototype.slice;
  /** Per call: log lines sent, and host operations awaiting an answer (hostile code could flood). */
  const MAX_LOG_LINES = 1000;
  const MAX_LOG_CHARS = 4096;
  const MAX_PENDING = 1000;
  const ProxyCtor = Proxy;
  const BRAND = Symbol.for('favn.serverFunction');
  const KIND_LABEL: Record<string, string> = { query: 'a query', mutation: 'a mutation', action: 'an action' };

  // Memory the isolate's heap limit does not see is made unavailable: WebAssembly memories,
  // resizable/growable buffers (reserved outside the counted allocator) and ICU-backed Intl
  // objects. Plain ArrayBuffers go through isolated-vm's allocator and count against the limit.
  delete g.WebAssembly;
  delete g.Intl;
  // Its callbacks run whenever the engine collects garbage: outside any call and its CPU budget.
  delete g.FinalizationRegistry;
  const fixedLengthOnly = (Real: any, name: string) => {
    const Wrapped: any = new ProxyCtor(Real, {
      construct(target, args, newTarget) {
        const options = args[1];
        // Read once and never passed on: a getter cannot answer differently the second time.
        if (options !== null && typeof options === 'object' && options.maxByteLength !== undefined) {
          throw new TypeErrorCtor(
            `${name} with maxByteLength is not available in handlers: its memory is not counted against the isolate's limit`,
          );
        }
        return construct(target, [args[0]], newTarget === Wrapped ? target : newTarget);
      },
    });
    defineProperty(Real.prototype, 'constructor', {
      value: Wrapped,
      writable: true,
      configurable: true,
      enumerable: false,
    });
    defineProperty(g, name, { value: Wrapped, writable: true, configurable: true, enumerable: false });
  };
  fixedLengthOnly(ArrayBuffer, 'ArrayBuffer');
  if (typeof SharedArrayBuffer === 'function') fixedLengthOnly(SharedArrayBuffer, 'SharedArrayBuffer');

  // Built-ins that walk an array's whole length run without checking for interrupts: over a huge
  // sparse array (`a[2 ** 31] = 1; a.join('')`) they hold a thread for minutes, past every limit.
  // No array that fits in an isolate's memory is longer than this, so longer ones are refused.
  const MAX_ARRAY_WALK = 2 ** 25;
  const arrayProto: any = Array.prototype;
  const walkers = [
    'join',
    'toString',
    'toLocaleString',
    'indexOf',
    'lastIndexOf',
    'includes',
    'sort',
    'reverse',
    'fill',
    'copyWithin',
    'flat',
    'flatMap',
    'slice',
    'splice',
    'concat',
    'toSorted',
    'toReversed',
    'toSpliced',
    'with',
    'find',
    'findIndex',
    'findLast',
    'findLastIndex',
    'every',
    'some',
    'forEach',
    'map',
    'filter',
    'reduce',
    'reduceRight',
    'shift',
    'unshift',
    'entries',
    'keys',
    'values',
  ];
  const NumberCtor = Number;
  const MUTATING: Record<string, boolean> = createObject(null);
  MUTATING.sort =
    MUTATING.reverse =
    MUTATING.fill =
    MUTATING.copyWithin =
    MUTATING.splice =
    MUTATING.shift =
    MUTATING.unshift =
      true;
  const refuse = (name: string, length: number) => {
    throw new RangeErrorCtor(
      `Array.prototype.${name} over ${length} elements is not available in handlers (at most ${MAX_ARRAY_WALK})`,
    );
  };
  /** `length` as the engine will see it: read and converted once here, refused if too long. */
  const lengthOf = (name: string, value: any): number => {
    let length = NumberCtor(value.length);
    length = length > 0 ? (length < 2 ** 53 ? length - (length % 1) : 2 ** 53 - 1) : 0;
    if (length > MAX_ARRAY_WALK) refuse(name, length);
    return length;
  };
  /**
   * A receiver the built-in walks. A real array (or a Proxy of one) has a data `length`; anything
   * else could answer differently on the engine's own read, so it gets an object whose `length`
   * is the value checked here (and a mutating built-in is refused on it).
   */
  const checked = (name: string, value: unknown): unknown => {
    if (value === null || value === undefined || (typeof value !== 'object' && typeof value !== 'function'))
      return value;
    const length = lengthOf(name, value);
    if (isArray(value)) return value;
    if (MUTATING[name] === true)
      throw new TypeErrorCtor(`Array.prototype.${name} on an object that is not an array is not available in handlers`);
    return createObject(value, { length: { value: length } });
  };
  for (let i = 0; i < walkers.length; i++) {
    const name = walkers[i]!;
    const original = arrayProto[name];
    if (typeof original !== 'function') continue;
    const guarded = {
      [name](this: unknown, ...args: unknown[]) {
        const self = checked(name, this);
        // concat walks its array arguments too (only real arrays are spread).
        if (name === 'concat') for (let j = 0; j < args.length; j++) if (isArray(args[j])) lengthOf(name, args[j]);
        return apply(original, self, args);
      },
    }[name];
    defineProperty(arrayProto, name, { value: guarded, writable: true, configurable: true, enumerable: false });
  }
  // `Array.from` and `TypedArray.from` walk an array-like's length the same way.
  const guardFrom = (owner: any, label: string) => {
    const original = owner.from;
    if (typeof original !== 'function') return;
    const from = function (this: unknown, source: any, ...rest: unknown[]) {
      let iterable = false;
      if (source !== null && source !== undefined) {
        const iterator = source[Symbol.iterator];
        iterable = iterator !== undefined && iterator !== null;
      }
      const self = iterable ? source : checked(`${label}.from`, source);
      return apply(original, this, [self, ...rest]);
    };
    defineProperty(owner, 'from', { value: from, writable: true, configurable: true, enumerable: false });
  };
  guardFrom(Array, 'Array');
  guardFrom(Object.getPrototypeOf(Uint8Array), 'TypedArray');
  if (arrayProto[Symbol.iterator] !== undefined)
    defineProperty(arrayProto, Symbol.iterator, {
      value: arrayProto.values,
      writable: true,
      configurable: true,
      enumerable: false,
    });

  /** What differs per call: the current one is restored whenever its code runs again. */
  interface CallState {
    id: number;
    kind: string;
    /** Frozen `Date.now()` of a query or mutation; `null` for actions (real time). */
    now: number | null;
    /** Seed of `Math.random` for queries and mutations (hashed on first use). */
    seed: string | null;
    rng: number | null;
    logs: number;
    pending: number;
  }
  interface Waiter {
    resolve: (value: unknown) => void;
    reject: (error: unknown) => void;
    call: CallState;
  }

  let handlers: Record<string, any> = createObject(null);
  let runHandler: (fn: any, ctx: any, args: unknown[]) => unknown = () => {
    throw new ErrorCtor('The handler bundle did not load');
  };
  const names = new MapCtor<unknown, string>();
  const pending = new MapCtor<number, Waiter>();
  let current: CallState = { id: 0, kind: '', now: null, seed: null, rng: null, logs: 0, pending: 0 };
  let nextTicket = 0;
  let lastCtxJson = '';
  let lastCtx: Record<string, unknown> = {};

  /**
   * Largest message to the host, in characters (set by each dispatch). The message is copied out of
   * the isolate's heap, so an unbounded one built in a nearly full isolate could exhaust it.
   */
  let messageLimit = 1024 * 1024;
  const host = (callId: number, op: string, payload: string, ticket = 0): void => {
    if (typeof payload !== 'string' || payload.length > messageLimit) {
      throw new RangeErrorCtor(
        `A ctx operation of ${typeof payload === 'string' ? payload.length : 'unknown'} characters is over the limit of ${messageLimit}`,
      );
    }
    hostSend(undefined, [callId, op, payload, ticket]);
  };
  const hostAsync = (call: CallState, op: string, payload: string): Promise<unknown> => {
    if (call.pending >= MAX_PENDING) {
      return apply(promiseReject, PromiseCtor, [
        new ErrorCtor(`More than ${MAX_PENDING} ctx operations of one call are under way at once`),
      ]);
    }
    const ticket = ++nextTicket;
    try {
      host(call.id, op, payload, ticket);
    } catch (error) {
      return apply(promiseReject, PromiseCtor, [error]);
    }
    call.pending++;
    return new PromiseCtor((resolve, reject) => {
      apply(mapSet, pending, [ticket, { resolve, reject, call }]);
    });
  };
  /** An object without a prototype: a patched `Object.prototype.toJSON` cannot replace it in JSON. */
  const record = (fields: Record<string, unknown>): Record<string, unknown> => assign(createObject(null), fields);
  const parseJson = (json: unknown) => (json === undefined ? undefined : parse(json as string));

  // Deterministic time and randomness for queries and mutations (per call, see CallState).
  const now = () => (current.now === null ? apply(realNow, RealDate, []) : current.now);
  g.Date = new ProxyCtor(RealDate, {
    construct: (target, args, newTarget) => construct(target, args.length === 0 ? [now()] : args, newTarget),
    apply: () => new RealDate(now()).toString(),
    get: (target, key) => (key === 'now' ? now : (target as any)[key]),
  });
  Math.random = () => {
    const call = current;
    if (call.seed === null) return realRandom();
    if (call.rng === null) {
      let hash = 0x811c9dc5;
      for (let i = 0; i < call.seed.length; i++) hash = imul(hash ^ call.seed.charCodeAt(i), 0x01000193);
      call.rng = hash >>> 0;
    }
    // mulberry32
    call.rng = (call.rng + 0x6d2b79f5) >>> 0;
    let t = call.rng;
    t = imul(t ^ (t >>> 15), t | 1);
    t ^= t + imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };

  g.fetch = () => {
    throw new ErrorCtor(
      current.kind === 'action'
        ? 'fetch is not available in handlers: use ctx.fetch(url, init) in an action'
        : `fetch is not available in ${KIND_LABEL[current.kind] ?? 'a handler'}: queries and mutations must be deterministic; call external APIs from an action with ctx.fetch`,
    );
  };
  const log =
    (level: string) =>
    (...values: unknown[]) => {
      const call = current;
      if (call.logs > MAX_LOG_LINES) return;
      call.logs++;
      if (call.logs > MAX_LOG_LINES) {
        host(
          call.id,
          'log',
          stringify(
            record({ level: 'warn', text: `(more than ${MAX_LOG_LINES} log lines in one call: the rest are dropped)` }),
          ),
        );
        return;
      }
      let text = '';
      for (let i = 0; i < values.length; i++) {
        const value = values[i];
        let part: string;
        try {
          part = typeof value === 'string' ? value : (stringify(value) ?? StringCtor(value));
        } catch {
          part = StringCtor(value);
        }
        text += (i ? ' ' : '') + part;
        if (text.length > MAX_LOG_CHARS) break;
      }
      if (text.length > MAX_LOG_CHARS) text = `${apply(stringSlice, text, [0, MAX_LOG_CHARS])}…`;
      host(call.id, 'log', stringify(record({ level, text })));
    };
  g.console = freeze({
    log: log('log'),
    info: log('info'),
    warn: log('warn'),
    error: log('error'),
    debug: log('debug'),
  });

  function describeError(error: unknown): string {
    const out = record({ message: 'Non-error thrown' }) as {
      message: string;
      status?: unknown;
      name?: string;
      stack?: string;
    };
    try {
      if (typeof error === 'string') out.message = error;
      else if (error !== null && typeof error === 'object') {
        const e = error as Record<string, unknown>;
        out.message =
          typeof e.message === 'string' ? e.message : `Non-error thrown: ${stringify(error) ?? StringCtor(error)}`;
        out.status = typeof e.statusCode === 'number' ? e.statusCode : e.status;
        if (typeof e.name === 'string') out.name = e.name;
        if (typeof e.stack === 'string') out.stack = e.stack;
      } else out.message = `Non-error thrown: ${StringCtor(error)}`;
    } catch {
      out.message = 'Non-error thrown (it could not be described)';
    }
    try {
      if (typeof out.message === 'string' && out.message.length > 16384)
        out.message = `${apply(stringSlice, out.message, [0, 16384])}…`;
      if (typeof out.stack === 'string' && out.stack.length > 16384)
        out.stack = `${apply(stringSlice, out.stack, [0, 16384])}…`;
      if (typeof out.name === 'string' && out.name.length > 256) out.name = 'Error';
      if (typeof out.status !== 'number') delete out.status;
      return stringify(out);
    } catch {
      return '{"message":"Non-error thrown (it could not be described)"}';
    }
  }

  /** `ctx.db` of one query (writes refused) or mutation, bound to its call. */
  function makeDb(call: CallState, readOnly: boolean): Record<string, unknown> {
    const op =
      (method: string) =>
      (...args: unknown[]) =>
        apply(then, hostAsync(call, 'db', stringify(record({ method, args }))), [parseJson]);
    const refuse = (method: string) => () =>
      apply(promiseReject, PromiseCtor, [
        new ErrorCtor(`ctx.db.${method} is not allowed in a query: queries only read; write from a mutation`),
      ]);
    const db: Record<string, unknown> = { get: op('get'), query: op('query') };
    db.insert = readOnly ? refuse('insert') : op('insert');
    db.patch = readOnly ? refuse('patch') : op('patch');
    db.delete = readOnly ? refuse('delete') : op('delete');
    return freeze(db);
  }

  /** `ctx.fetch`, `ctx.runQuery` and `ctx.runMutation` of one action, bound to its call. */
  function makeActionTools(call: CallState): Record<string, unknown> {
    const run =
      (kind: string) =>
      (fn: unknown, ...args: unknown[]) => {
        const name = typeof fn === 'string' ? fn : apply(mapGet, names, [fn]);
        if (typeof name !== 'string') {
          return apply(promiseReject, PromiseCtor, [
            new ErrorCtor(
              `ctx.run${kind === 'query' ? 'Query' : 'Mutation'} needs a ${kind} exported by a server module, or its name`,
            ),
          ]);
        }
        return apply(then, hostAsync(call, 'run', stringify(record({ kind, name, args }))), [parseJson]);
      };
    const fetch = (url: unknown, init: Record<string, unknown> = {}) => {
      const headers = init.headers ?? {};
      const payload = stringify(
        record({
          url: StringCtor(url),
          method: init.method,
          headers: isArray(headers) ? headers : entries(headers as object),
          body: init.body,
        }),
      );
      return apply(then, hostAsync(call, 'fetch', payload), [
        (json: unknown) => {
          const r = parse(json as string) as {
            status: number;
            statusText: string;
            url: string;
            headers: [string, string][];
            body: string;
          };
          const lookup = new MapCtor<string, string>(
            apply(arrayMap, r.headers, [([k, v]: [string, string]) => [apply(toLowerCase, k, []), v]]),
          );
          return freeze({
            ok: r.status >= 200 && r.status < 300,
            status: r.status,
            statusText: r.statusText,
            url: r.url,
            headers: freeze({
              get: (name: string) => apply(mapGet, lookup, [apply(toLowerCase, StringCtor(name), [])]) ?? null,
              entries: () => apply(arrayMap, r.headers, [([k, v]: [string, string]) => [k, v]]),
            }),
            text: async () => r.body,
            json: async () => parse(r.body),
          });
        },
      ]);
    };
    return { fetch, runQuery: run('query'), runMutation: run('mutation') };
  }

  /** The handler's result as JSON, or the error to report; never a method of feature code. */
  function finish(name: string, value: unknown, maxResultChars: number): { ok: boolean; text: string } {
    let json: string | undefined;
    try {
      json = stringify(value === undefined ? null : value);
    } catch (error) {
      let problem = 'that cannot be sent as JSON';
      try {
        // Only nesting too deep for the engine's stack makes stringify throw a RangeError.
        problem =
          error instanceof RangeErrorCtor
            ? 'nested deeper than 64 levels, which is not sent'
            : `${problem}: ${(error as Error).message}`;
      } catch {
        // A patched Symbol.hasInstance or message getter: the plain description will do.
      }
      return { ok: false, text: describeError(new ErrorCtor(`${name} returned a value ${problem}`)) };
    }
    if (typeof json !== 'string') json = 'null';
    if (json.length > maxResultChars) {
      const error = new ErrorCtor(
        `${name} returned ${json.length} characters of JSON, over the limit of ${maxResultChars}`,
      );
      return { ok: false, text: describeError(assign(error, { statusCode: 500 })) };
    }
    return { ok: true, text: json };
  }

  return {
    install() {
      const bundle = g.__favn_handlers as Record<string, any> | undefined;
      delete g.__favn_handlers;
      if (!bundle || typeof bundle.__favn_run !== 'function')
        throw new ErrorCtor('The handler bundle did not define its exports');
      runHandler = bundle.__favn_run;
      const kinds: Record<string, string> = {};
      handlers = createObject(null);
      const exported = keys(bundle);
      for (let i = 0; i < exported.length; i++) {
        const name = exported[i]!;
        const value = bundle[name];
        if (name === '__favn_run' || typeof value !== 'function' || typeof value[BRAND] !== 'string') continue;
        handlers[name] = value;
        kinds[name] = value[BRAND];
        apply(mapSet, names, [value, name]);
      }
      return stringify(kinds);
    },
    dispatch(callId, kind, name, argsJson, requestId, ctxJson, startedAt, maxResultChars) {
      try {
        return run(callId, kind, name, argsJson, requestId, ctxJson, startedAt, maxResultChars);
      } catch (error) {
        return `E${describeError(error)}`;
      }
    },
    resume(ticket, ok, json) {
      const waiter = apply(mapGet, pending, [ticket]) as Waiter | undefined;
      if (!waiter) return;
      apply(mapDelete, pending, [ticket]);
      waiter.call.pending--;
      current = waiter.call;
      if (ok) {
        waiter.resolve(json);
        return;
      }
      const failure = parse(json as string) as { message: string; status?: number };
      waiter.reject(assign(new ErrorCtor(failure.message), failure.status ? { statusCode: failure.status } : {}));
    },
  };

  /** One call, as `dispatch` describes it. */
  function run(
    callId: number,
    kind: string,
    name: string,
    argsJson: string,
    requestId: string,
    ctxJson: string,
    startedAt: number,
    maxResultChars: number,
  ): string | undefined {
    messageLimit = maxResultChars + 1024;
    const deterministic = kind !== 'action';
    const call: CallState = {
      id: callId,
      kind,
      now: deterministic ? startedAt : null,
      seed: deterministic ? `${name}\n${argsJson}` : null,
      rng: null,
      logs: 0,
      pending: 0,
    };
    current = call;
    const fn = apply(hasOwn, handlers, [name]) ? handlers[name] : undefined;
    if (!fn || fn[BRAND] !== kind)
      return `E${describeError(new ErrorCtor(`"${name}" is not ${KIND_LABEL[kind] ?? 'a handler'} in the handler bundle`))}`;
    let ctx: Record<string, unknown>;
    let args: unknown[];
    try {
      if (ctxJson !== lastCtxJson) {
        lastCtx = parse(ctxJson);
        lastCtxJson = ctxJson;
      }
      args = parse(argsJson);
    } catch (error) {
      return `E${describeError(error)}`;
    }
    if (kind === 'action')
      ctx = { ...lastCtx, requestId, ...makeActionTools(call), secrets: freeze(lastCtx.secrets ?? {}) };
    else ctx = { ...lastCtx, requestId, db: makeDb(call, kind === 'query') };
    let out: unknown;
    try {
      out = runHandler(fn, ctx, args);
    } catch (error) {
      return `E${describeError(error)}`;
    }
    if (out === null || (typeof out !== 'object' && typeof out !== 'function')) {
      const answer = finish(name, out, maxResultChars);
      return (answer.ok ? 'R' : 'E') + answer.text;
    }
    let thenable = false;
    try {
      thenable = typeof (out as { then?: unknown }).then === 'function';
    } catch (error) {
      return `E${describeError(error)}`;
    }
    if (!thenable) {
      const answer = finish(name, out, maxResultChars);
      return (answer.ok ? 'R' : 'E') + answer.text;
    }
    // A promise of our own whose `constructor` is undefined: `then` then uses the intrinsic
    // Promise, whatever feature code did to Promise.prototype.constructor or Symbol.species.
    const settled = new PromiseCtor((resolve) => resolve(out));
    defineProperty(settled, 'constructor', { value: undefined });
    apply(then, settled, [
      (value: unknown) => {
        current = call;
        const answer = finish(name, value, maxResultChars);
        host(callId, answer.ok ? 'done' : 'fail', answer.text);
      },
      (error: unknown) => {
        current = call;
        host(callId, 'fail', describeError(error));
      },
    ]);
    return undefined;
  }
}
