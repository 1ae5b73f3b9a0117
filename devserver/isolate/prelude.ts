/**
 * The runtime inside each isolate context, installed before the feature's bundle runs. It is
 * compiled with the host but runs *in the isolate*: it is sent as source (`isolatePrelude.toString()`)
 * and may use nothing from outside its own body.
 *
 * It receives one host reference (`host`) and keeps it in this closure: feature code never sees
 * it. Every host operation is `host(callId, op, payloadJson)`; asynchronous ones return a ticket
 * that the host later settles with `resume(ticket, ok, json)`.
 */

/* eslint-disable @typescript-eslint/no-explicit-any -- the isolate side is plain JavaScript. */

/** The isolate's view of the host reference (isolated-vm's `Reference`). */
interface HostReference {
  applySync(receiver: undefined, args: unknown[]): unknown;
}

/** Functions the host calls; returned by the prelude as references. */
export interface PreludeExports {
  /** Takes the bundle's exports from the global the bundle set, and hides them. */
  install(): string;
  /**
   * Runs one call. A call that finishes synchronously returns `R<json>` (result) or `E<json>`
   * (error) at once; otherwise it returns nothing and completion arrives as `done`/`fail`.
   * `ctxJson` is the caller part of `ctx` (without `requestId`); the same string as last time
   * reuses the parsed copy.
   */
  dispatch(callId: number, kind: string, name: string, argsJson: string, requestId: string, ctxJson: string, now: number, maxResultChars: number): string | undefined;
  /** Settles a pending host operation. */
  resume(ticket: number, ok: boolean, json: string | undefined): void;
}

export function isolatePrelude(hostRef: HostReference): PreludeExports {
  'use strict';
  const g: any = globalThis;
  const hostApply = hostRef.applySync.bind(hostRef);
  const stringify = JSON.stringify;
  const parse = JSON.parse;
  const hasOwn = Object.prototype.hasOwnProperty;
  const freeze = Object.freeze;
  const RealDate = Date;
  const realNow = Date.now;
  const realRandom = Math.random;
  const PromiseCtor = Promise;
  const then = Promise.prototype.then;
  const MapCtor = Map;
  const mapGet = Map.prototype.get;
  const mapSet = Map.prototype.set;
  const mapDelete = Map.prototype.delete;
  const ErrorCtor = Error;
  const StringCtor = String;
  const BRAND = Symbol.for('favn.serverFunction');
  const KIND_LABEL: Record<string, string> = { query: 'a query', mutation: 'a mutation', action: 'an action' };

  let handlers: Record<string, any> = {};
  let runHandler: (fn: any, ctx: any, args: unknown[]) => unknown = () => {
    throw new ErrorCtor('The handler bundle did not load');
  };
  const names = new MapCtor<unknown, string>();
  const pending = new MapCtor<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>();
  // A call has its isolate to itself, so "the current call" is well defined across awaits.
  let currentCall = 0;
  let currentKind = '';
  let frozenNow: number | null = null;
  /** Seeded lazily from `seedSource` on the call's first Math.random(); `null` state: not yet. */
  let seedSource: string | null = null;
  let rngState: number | null = null;
  let lastCtxJson = '';
  let lastCtx: Record<string, unknown> = {};

  const host = (callId: number, op: string, payload: string): unknown => hostApply(undefined, [callId, op, payload]);
  const hostAsync = (callId: number, op: string, payload: string): Promise<unknown> => {
    let ticket: number;
    try {
      ticket = host(callId, op, payload) as number;
    } catch (error) {
      return PromiseCtor.reject(error);
    }
    return new PromiseCtor((resolve, reject) => {
      mapSet.call(pending, ticket, { resolve, reject });
    });
  };

  // Deterministic time and randomness for queries and mutations (`frozenNow`/`rng` set per call).
  const now = () => (frozenNow === null ? realNow.call(RealDate) : frozenNow);
  g.Date = new Proxy(RealDate, {
    construct: (target, args, newTarget) => Reflect.construct(target, args.length === 0 ? [now()] : args, newTarget),
    apply: () => new RealDate(now()).toString(),
    get: (target, key) => (key === 'now' ? now : (target as any)[key]),
  });
  Math.random = () => {
    if (seedSource === null) return realRandom();
    if (rngState === null) {
      let hash = 0x811c9dc5;
      for (let i = 0; i < seedSource.length; i++) hash = Math.imul(hash ^ seedSource.charCodeAt(i), 0x01000193);
      rngState = hash >>> 0;
    }
    // mulberry32
    rngState = (rngState + 0x6d2b79f5) >>> 0;
    let t = rngState;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };

  g.fetch = () => {
    throw new ErrorCtor(
      currentKind === 'action'
        ? 'fetch is not available in handlers: use ctx.fetch(url, init) in an action'
        : `fetch is not available in ${KIND_LABEL[currentKind] ?? 'a handler'}: queries and mutations must be deterministic; call external APIs from an action with ctx.fetch`,
    );
  };
  const log = (level: string) => (...values: unknown[]) => {
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
    }
    host(currentCall, 'log', stringify({ level, text }));
  };
  g.console = freeze({ log: log('log'), info: log('info'), warn: log('warn'), error: log('error'), debug: log('debug') });

  function describeError(error: unknown): string {
    const out: { message: string; status?: unknown; name?: string; stack?: string } = { message: 'Non-error thrown' };
    try {
      if (typeof error === 'string') out.message = error;
      else if (error !== null && typeof error === 'object') {
        const e = error as Record<string, unknown>;
        out.message = typeof e.message === 'string' ? e.message : `Non-error thrown: ${stringify(error) ?? StringCtor(error)}`;
        out.status = typeof e.statusCode === 'number' ? e.statusCode : e.status;
        if (typeof e.name === 'string') out.name = e.name;
        if (typeof e.stack === 'string') out.stack = e.stack;
      } else out.message = `Non-error thrown: ${StringCtor(error)}`;
    } catch {
      out.message = 'Non-error thrown (it could not be described)';
    }
    return stringify(out);
  }

  /** `ctx.db` of queries (writes refused) and of mutations, made once per context. */
  function makeDb(readOnly: boolean): Record<string, unknown> {
    const op = (method: string) => (...args: unknown[]) => then.call(hostAsync(currentCall, 'db', stringify({ method, args })), (json) => (json === undefined ? undefined : parse(json as string)));
    const refuse = (method: string) => () => PromiseCtor.reject(new ErrorCtor(`ctx.db.${method} is not allowed in a query: queries only read; write from a mutation`));
    const db: Record<string, unknown> = { get: op('get'), query: op('query') };
    for (const method of ['insert', 'patch', 'delete']) db[method] = readOnly ? refuse(method) : op(method);
    return freeze(db);
  }
  const queryDb = makeDb(true);
  const mutationDb = makeDb(false);

  function makeActionTools(): Record<string, unknown> {
    const run = (kind: string) => (fn: unknown, ...args: unknown[]) => {
      const name = typeof fn === 'string' ? fn : mapGet.call(names, fn);
      if (typeof name !== 'string') return PromiseCtor.reject(new ErrorCtor(`ctx.run${kind === 'query' ? 'Query' : 'Mutation'} needs a ${kind} exported by a server module, or its name`));
      return then.call(hostAsync(currentCall, 'run', stringify({ kind, name, args })), (json) => parse(json as string));
    };
    const fetch = (url: unknown, init: Record<string, unknown> = {}) => {
      const headers = init.headers ?? {};
      const payload = stringify({ url: StringCtor(url), method: init.method, headers: Array.isArray(headers) ? headers : Object.entries(headers as object), body: init.body });
      return then.call(hostAsync(currentCall, 'fetch', payload), (json) => {
        const r = parse(json as string) as { status: number; statusText: string; url: string; headers: [string, string][]; body: string };
        const lookup = new MapCtor<string, string>(r.headers.map(([k, v]) => [k.toLowerCase(), v]));
        return freeze({
          ok: r.status >= 200 && r.status < 300,
          status: r.status,
          statusText: r.statusText,
          url: r.url,
          headers: freeze({ get: (name: string) => mapGet.call(lookup, StringCtor(name).toLowerCase()) ?? null, entries: () => r.headers.map(([k, v]) => [k, v]) }),
          text: async () => r.body,
          json: async () => parse(r.body),
        });
      });
    };
    return { fetch, runQuery: run('query'), runMutation: run('mutation') };
  }
  const actionTools = makeActionTools();

  return {
    install() {
      const bundle = g.__favn_handlers as Record<string, any> | undefined;
      delete g.__favn_handlers;
      if (!bundle || typeof bundle.__favn_run !== 'function') throw new ErrorCtor('The handler bundle did not define its exports');
      runHandler = bundle.__favn_run;
      const kinds: Record<string, string> = {};
      handlers = {};
      for (const name of Object.keys(bundle)) {
        const value = bundle[name];
        if (name === '__favn_run' || typeof value !== 'function' || typeof value[BRAND] !== 'string') continue;
        handlers[name] = value;
        kinds[name] = value[BRAND];
        mapSet.call(names, value, name);
      }
      return stringify(kinds);
    },
    dispatch(callId, kind, name, argsJson, requestId, ctxJson, startedAt, maxResultChars) {
      currentCall = callId;
      currentKind = kind;
      const fn = hasOwn.call(handlers, name) ? handlers[name] : undefined;
      if (!fn || fn[BRAND] !== kind) return `E${describeError(new ErrorCtor(`"${name}" is not ${KIND_LABEL[kind] ?? 'a handler'} in the handler bundle`))}`;
      const deterministic = kind !== 'action';
      frozenNow = deterministic ? startedAt : null;
      seedSource = deterministic ? `${name}\n${argsJson}` : null;
      rngState = null;
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
      if (kind === 'action') ctx = { ...lastCtx, requestId, ...actionTools, secrets: freeze(lastCtx.secrets ?? {}) };
      else ctx = { ...lastCtx, requestId, db: kind === 'query' ? queryDb : mutationDb };
      const finish = (value: unknown): string => {
        let json: string | undefined;
        try {
          json = stringify(value === undefined ? null : value);
        } catch (error) {
          return `E${describeError(new ErrorCtor(`${name} returned a value that cannot be sent as JSON: ${(error as Error).message}`))}`;
        }
        if (json === undefined) json = 'null';
        if (json.length > maxResultChars) {
          return `E${describeError(Object.assign(new ErrorCtor(`${name} returned ${json.length} characters of JSON, over the limit of ${maxResultChars}`), { statusCode: 500 }))}`;
        }
        return `R${json}`;
      };
      let out: unknown;
      try {
        out = runHandler(fn, ctx, args);
      } catch (error) {
        return `E${describeError(error)}`;
      }
      if (out === null || (typeof out !== 'object' && typeof out !== 'function') || typeof (out as { then?: unknown }).then !== 'function') return finish(out);
      then.call(
        PromiseCtor.resolve(out),
        (value) => {
          const answer = finish(value);
          if (answer.charCodeAt(0) === 82 /* R */) host(callId, 'done', answer.slice(1));
          else host(callId, 'fail', answer.slice(1));
        },
        (error) => host(callId, 'fail', describeError(error)),
      );
      return undefined;
    },
    resume(ticket, ok, json) {
      const waiter = mapGet.call(pending, ticket) as { resolve: (v: unknown) => void; reject: (e: unknown) => void } | undefined;
      if (!waiter) return;
      mapDelete.call(pending, ticket);
      if (ok) {
        waiter.resolve(json);
        return;
      }
      const failure = parse(json as string) as { message: string; status?: number };
      waiter.reject(Object.assign(new ErrorCtor(failure.message), failure.status ? { statusCode: failure.status } : {}));
    },
  };
}
