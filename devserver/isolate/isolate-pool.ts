import { RequestError } from '../../runtime/request-error.js';
import { isolatedVm, type IvmContext, type IvmIsolate, type IvmReference, type IvmScript } from './isolated-vm.js';
import { isolatePrelude, type PreludeExports } from './prelude.js';

const PRELUDE = `return (${isolatePrelude.toString()})($0);`;

/** What the prelude of one context hands the host. */
export interface IsolateContext {
  dispatch: IvmReference<PreludeExports['dispatch']>;
  resume: IvmReference<PreludeExports['resume']>;
}

/**
 * Called for every operation isolate code asks of the host. It arrives as a task on the host's
 * event loop (the isolate never waits for the host), so it returns nothing.
 */
export type HostCall = (callId: unknown, op: unknown, payload: unknown, ticket: unknown) => void;

export interface IsolatePoolOptions {
  memoryLimitMb: number;
  /** Isolates at once, busy and idle; more calls wait (nested calls of an action use its isolate). */
  maxIsolates: number;
  /** Contexts kept per isolate, one per caller identity (least recently used goes first). */
  maxContexts: number;
  /** Time the bundle's top-level code may take when a context starts. */
  startTimeoutMs: number;
  onHostCall: HostCall;
}

/**
 * One isolate: the bundle compiled once, and a context per caller identity, so module state of
 * one user's calls is never seen by another's. A call (with the queries and mutations it runs)
 * has the isolate to itself.
 *
 * Isolate code only ever runs on isolated-vm's own threads (`apply`, never `applySync`): the host's
 * event loop keeps serving while it runs, and a runaway is ended by disposing the isolate from the
 * host, which does not wait for it.
 */
export class IsolateSlot {
  readonly version: number;
  #isolate: IvmIsolate;
  #script: IvmScript;
  #contexts = new Map<string, { context: IvmContext; exports: IsolateContext }>();
  #options: IsolatePoolOptions;
  #latest: string | null = null;
  #running = 0;
  #idle: (() => void)[] = [];

  constructor(code: string, version: number, options: IsolatePoolOptions) {
    this.version = version;
    this.#options = options;
    this.#isolate = new (isolatedVm().Isolate)({ memoryLimit: options.memoryLimitMb });
    try {
      this.#script = this.#isolate.compileScriptSync(code, { filename: 'favn-handlers.js' });
    } catch (error) {
      this.dispose();
      throw error;
    }
  }

  get disposed(): boolean {
    return this.#isolate.isDisposed;
  }

  /** CPU time the isolate has used so far, in ms. */
  cpuTimeMs(): number {
    return this.#isolate.isDisposed ? Infinity : Number(this.#isolate.cpuTime) / 1e6;
  }

  /** The context for `identity`, started (prelude, bundle) on first use. */
  context(identity: string): IsolateContext | Promise<IsolateContext> {
    const known = this.#contexts.get(identity);
    if (known) {
      // Least recently used first: move to the end (unless it already is the latest).
      if (identity !== this.#latest) {
        this.#contexts.delete(identity);
        this.#contexts.set(identity, known);
        this.#latest = identity;
      }
      return known.exports;
    }
    return this.track(this.#start()).then((started) => {
      this.#contexts.set(identity, started);
      this.#latest = identity;
      if (this.#contexts.size > this.#options.maxContexts) {
        const [oldest, entry] = this.#contexts.entries().next().value!;
        this.#contexts.delete(oldest);
        entry.context.release();
      }
      return started.exports;
    });
  }

  /** Counts work under way in the isolate until `task` settles (see `whenIdle`). */
  track<T>(task: Promise<T>): Promise<T> {
    this.#running++;
    const done = () => {
      if (--this.#running === 0) for (const resolve of this.#idle.splice(0)) resolve();
    };
    task.then(done, done);
    return task;
  }

  /** Resolves when no work of this isolate is under way (at once when none is). */
  whenIdle(): Promise<void> {
    if (this.#running === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  dispose(): void {
    if (!this.#isolate.isDisposed) this.#isolate.dispose();
    this.#contexts.clear();
  }

  async #start(): Promise<{ context: IvmContext; exports: IsolateContext }> {
    const context = await this.#isolate.createContext();
    try {
      const host = new (isolatedVm().Reference)(this.#options.onHostCall);
      const prelude = (await context.evalClosure(PRELUDE, [host], {
        result: { reference: true },
      })) as IvmReference<PreludeExports>;
      const [install, dispatch, resume] = await Promise.all([
        prelude.get('install', { reference: true }),
        prelude.get('dispatch', { reference: true }),
        prelude.get('resume', { reference: true }),
      ]);
      await this.#script.run(context, { timeout: this.#options.startTimeoutMs });
      await install.apply(undefined, [], { timeout: this.#options.startTimeoutMs });
      return { context, exports: { dispatch, resume } };
    } catch (error) {
      if (!this.#isolate.isDisposed) context.release();
      throw error;
    }
  }
}

/** What `/_admin` shows of a feature's isolates. */
export interface IsolatePoolStats {
  isolates: number;
  idle: number;
  peak: number;
  waiting: number;
  max: number;
}

/** How long an isolate beyond the first may stay idle before it is disposed. */
const IDLE_ISOLATE_MS = 3000;

interface Waiter {
  resolve: (slot: IsolateSlot) => void;
  reject: (error: unknown) => void;
  abort?: AbortSignal | undefined;
  onAbort?: () => void;
}

/**
 * A feature's warm isolates. `load(code)` switches to a new bundle: idle isolates of the old one
 * go at once, busy ones when their call ends (in-flight calls finish on the old code).
 */
export class IsolatePool {
  #options: IsolatePoolOptions;
  #code: string | null = null;
  #closed = false;
  #version = 0;
  #idle: IsolateSlot[] = [];
  /** When each idle isolate became idle (`performance.now()`). */
  #idleSince = new WeakMap<IsolateSlot, number>();
  #sweep: NodeJS.Timeout | null = null;
  #live = 0;
  #peak = 0;
  #waiting: Waiter[] = [];

  constructor(options: IsolatePoolOptions) {
    this.#options = options;
  }

  /** Isolates now (busy and idle), the most there ever were at once, and callers waiting. */
  stats(): IsolatePoolStats {
    return {
      isolates: this.#live,
      idle: this.#idle.length,
      peak: this.#peak,
      waiting: this.#waiting.length,
      max: this.#options.maxIsolates,
    };
  }

  get loaded(): boolean {
    return this.#code !== null;
  }

  /**
   * Switches to a new bundle and warms one isolate for it: then it throws if the bundle does not
   * compile. With `warm: false` (built features, already checked) the first call makes the first
   * isolate: a host of many features holds none for the ones nobody calls.
   */
  load(code: string, { warm = true }: { warm?: boolean } = {}): void {
    // Lazily or not, a host without isolated-vm learns it now (the load fails naming the fix).
    if (!warm) isolatedVm();
    const first = warm ? new IsolateSlot(code, this.#version + 1, this.#options) : null;
    this.#code = code;
    this.#version++;
    for (const slot of this.#idle) this.#drop(slot);
    this.#idle = [];
    if (!first) return;
    this.#live++;
    this.#peak = Math.max(this.#peak, this.#live);
    this.release(first);
  }

  /**
   * An isolate for one call: an idle one, a new one, or (at the limit) the next one released.
   * A waiting caller whose `signal` aborts leaves the queue (it is read only when waiting).
   */
  acquire(signal?: () => AbortSignal): IsolateSlot | Promise<IsolateSlot> {
    let idle = this.#idle.pop();
    // An idle isolate may have been disposed since (a late fault): drop it, take the next.
    while (idle?.disposed) {
      this.#drop(idle);
      idle = this.#idle.pop();
    }
    if (idle) return idle;
    if (this.#live < this.#options.maxIsolates) return this.#create();
    return new Promise((resolve, reject) => {
      const abort = signal?.();
      const waiter: Waiter = { resolve, reject, abort };
      if (abort) {
        if (abort.aborted) return reject(abort.reason);
        waiter.onAbort = () => {
          const at = this.#waiting.indexOf(waiter);
          if (at >= 0) this.#waiting.splice(at, 1);
          reject(abort.reason);
        };
        abort.addEventListener('abort', waiter.onAbort, { once: true });
      }
      this.#waiting.push(waiter);
    });
  }

  /** Gives an isolate back after a call; a disposed or outdated one is dropped. */
  release(slot: IsolateSlot): void {
    if (slot.disposed || slot.version !== this.#version) {
      this.#drop(slot);
      const waiter = this.#nextWaiter();
      if (waiter) {
        try {
          waiter.resolve(this.#create());
        } catch (error) {
          waiter.reject(error);
        }
      }
      return;
    }
    const waiter = this.#nextWaiter();
    if (waiter) waiter.resolve(slot);
    else {
      this.#idle.push(slot);
      this.#idleSince.set(slot, performance.now());
      this.#scheduleSweep();
    }
  }

  /** Disposes idle isolates now and busy ones when their calls end. */
  close(): void {
    if (this.#sweep) clearTimeout(this.#sweep);
    this.#sweep = null;
    for (const slot of this.#idle) this.#drop(slot);
    this.#idle = [];
    this.#code = null;
    this.#version = -1;
    this.#closed = true;
    for (const waiter of this.#waiting.splice(0))
      waiter.reject(RequestError.of('unavailable', 'the host is shutting down'));
  }

  /**
   * Isolates idle for IDLE_ISOLATE_MS are disposed, all but the most recently used one: a burst's
   * isolates (each heap grown toward its limit) do not stay after it.
   */
  #scheduleSweep(): void {
    if (this.#sweep || this.#idle.length <= 1) return;
    this.#sweep = setTimeout(() => {
      this.#sweep = null;
      const now = performance.now();
      // The idle list is in release order: the oldest first, the warm one last.
      const keep = this.#idle.filter(
        (slot, i) => i === this.#idle.length - 1 || now - (this.#idleSince.get(slot) ?? now) < IDLE_ISOLATE_MS,
      );
      for (const slot of this.#idle) if (!keep.includes(slot)) this.#drop(slot);
      this.#idle = keep;
      this.#scheduleSweep();
    }, IDLE_ISOLATE_MS / 3);
    this.#sweep.unref();
  }

  #nextWaiter(): Waiter | undefined {
    const waiter = this.#waiting.shift();
    if (waiter?.onAbort) waiter.abort?.removeEventListener('abort', waiter.onAbort);
    return waiter;
  }

  #create(): IsolateSlot {
    if (this.#closed) throw RequestError.of('unavailable', 'the host is shutting down');
    if (this.#code === null) throw RequestError.of('unavailable', 'no handler bundle is loaded');
    const slot = new IsolateSlot(this.#code, this.#version, this.#options);
    this.#live++;
    this.#peak = Math.max(this.#peak, this.#live);
    return slot;
  }

  #drop(slot: IsolateSlot): void {
    slot.dispose();
    this.#live--;
  }
}
