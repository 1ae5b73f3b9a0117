import ivm from 'isolated-vm';
import { isolatePrelude, type PreludeExports } from './prelude.js';

const PRELUDE = `return (${isolatePrelude.toString()})($0);`;

/** What the prelude of one context hands the host. */
export interface IsolateContext {
  dispatch: ivm.Reference<PreludeExports['dispatch']>;
  resume: ivm.Reference<PreludeExports['resume']>;
}

/** Called for every operation isolate code asks of the host. */
export type HostCall = (callId: number, op: string, payload: string) => unknown;

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
 * one user's calls is never seen by another's. A call has the isolate to itself.
 */
export class IsolateSlot {
  readonly version: number;
  #isolate: ivm.Isolate;
  #script: ivm.Script;
  #contexts = new Map<string, { context: ivm.Context; exports: IsolateContext }>();
  #options: IsolatePoolOptions;
  #latest: string | null = null;

  constructor(code: string, version: number, options: IsolatePoolOptions) {
    this.version = version;
    this.#options = options;
    this.#isolate = new ivm.Isolate({ memoryLimit: options.memoryLimitMb });
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

  /** The context for `identity`, started (prelude, bundle) on first use. */
  context(identity: string): IsolateContext {
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
    const started = this.#start();
    this.#contexts.set(identity, started);
    this.#latest = identity;
    if (this.#contexts.size > this.#options.maxContexts) {
      const [oldest, entry] = this.#contexts.entries().next().value!;
      this.#contexts.delete(oldest);
      entry.context.release();
    }
    return started.exports;
  }

  dispose(): void {
    if (!this.#isolate.isDisposed) this.#isolate.dispose();
    this.#contexts.clear();
  }

  #start(): { context: ivm.Context; exports: IsolateContext } {
    const context = this.#isolate.createContextSync();
    try {
      const host = new ivm.Reference(this.#options.onHostCall);
      const prelude = context.evalClosureSync(PRELUDE, [host], { result: { reference: true } }) as ivm.Reference<PreludeExports>;
      const install = prelude.getSync('install', { reference: true });
      const exports: IsolateContext = { dispatch: prelude.getSync('dispatch', { reference: true }), resume: prelude.getSync('resume', { reference: true }) };
      this.#script.runSync(context, { timeout: this.#options.startTimeoutMs });
      install.applySync(undefined, []);
      return { context, exports };
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
  #version = 0;
  #idle: IsolateSlot[] = [];
  #live = 0;
  #peak = 0;
  #waiting: Waiter[] = [];

  constructor(options: IsolatePoolOptions) {
    this.#options = options;
  }

  /** Isolates now (busy and idle), the most there ever were at once, and callers waiting. */
  stats(): IsolatePoolStats {
    return { isolates: this.#live, idle: this.#idle.length, peak: this.#peak, waiting: this.#waiting.length, max: this.#options.maxIsolates };
  }

  get loaded(): boolean {
    return this.#code !== null;
  }

  /** Switches to a new bundle and warms one isolate for it. Throws if the bundle does not compile. */
  load(code: string): void {
    const warm = new IsolateSlot(code, this.#version + 1, this.#options);
    this.#code = code;
    this.#version = warm.version;
    for (const slot of this.#idle) this.#drop(slot);
    this.#idle = [];
    this.#live++;
    this.#peak = Math.max(this.#peak, this.#live);
    this.release(warm);
  }

  /**
   * An isolate for one call: an idle one, a new one, or (at the limit) the next one released.
   * A waiting caller whose `signal` aborts leaves the queue (it is read only when waiting).
   */
  acquire(signal?: () => AbortSignal): IsolateSlot | Promise<IsolateSlot> {
    const idle = this.#idle.pop();
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
    else this.#idle.push(slot);
  }

  /** Disposes idle isolates now and busy ones when their calls end. */
  close(): void {
    for (const slot of this.#idle) this.#drop(slot);
    this.#idle = [];
    this.#code = null;
    this.#version = -1;
    for (const waiter of this.#waiting.splice(0)) waiter.reject(new Error('The isolate pool was closed'));
  }

  #nextWaiter(): Waiter | undefined {
    const waiter = this.#waiting.shift();
    if (waiter?.onAbort) waiter.abort?.removeEventListener('abort', waiter.onAbort);
    return waiter;
  }

  #create(): IsolateSlot {
    if (this.#code === null) throw new Error('No handler bundle is loaded');
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
