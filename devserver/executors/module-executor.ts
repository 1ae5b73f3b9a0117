import { HTTPException } from 'hono/http-exception';
import { ErrorText } from '../../runtime/protocol.js';
import type { Executor, ExecutorStatus, Invocation } from './executor.js';
import { functionKindOf } from '../rate-limit/function-kind.js';

/** One server module the executor loads: its scanned export names and how to import it. */
export interface ModuleEntry {
  /** Name for messages (relative path). */
  file: string;
  /** Export names found by the static scan (`null` when the scan failed); only these are callable. */
  exportNames: readonly string[] | null;
  /** Imports (or re-imports) the module and returns its namespace. */
  load(): Promise<Record<string, unknown>>;
}

interface LoadedModule {
  invocations: Map<string, Invocation>;
  exportNames: readonly string[] | null;
  error: Error | null;
}

/**
 * Runs plain functions in the host process. Dispatch is by own export name from the scanned
 * list only, so `constructor`, `__proto__` or `toString` can never be called. A module that fails
 * to (re)load keeps its last good version serving.
 *
 * @example
 * const executor = new ModuleExecutor(async () => [{ file, exportNames, load: () => import(url) }])
 * await executor.reload()
 */
export class ModuleExecutor implements Executor {
  readonly mode = 'module';
  #entries: () => ModuleEntry[] | Promise<ModuleEntry[]>;
  #modules = new Map<string, LoadedModule>();
  #invocations = new Map<string, Invocation>();
  #pending: Promise<void> | null = null;
  #loadedAt: string | null = null;
  #onError: (file: string, error: Error) => void;
  #adapt: Adapter;

  constructor(entries: () => ModuleEntry[] | Promise<ModuleEntry[]>, options: { onError?: (file: string, error: Error) => void; adapt?: Adapter } = {}) {
    this.#entries = entries;
    this.#onError = options.onError ?? (() => {});
    this.#adapt = options.adapt ?? (() => undefined);
  }

  /** Loads every module again; calls made meanwhile wait for it, calls in flight keep old code. */
  reload(): Promise<void> {
    const run = this.#load();
    const pending = run.finally(() => {
      if (this.#pending === pending) this.#pending = null;
    });
    this.#pending = pending;
    return pending;
  }

  resolve(fnName: string): Invocation | undefined | Promise<Invocation | undefined> {
    if (this.#pending) return this.#pending.then(() => this.#lookup(fnName));
    return this.#lookup(fnName);
  }

  status(): ExecutorStatus {
    const errors = [...this.#modules.values()].map((m) => m.error?.message).filter(Boolean);
    return { exports: [...this.#invocations.keys()], loadedAt: this.#loadedAt, error: errors.length ? errors.join('\n') : null };
  }

  #lookup(fnName: string): Invocation | undefined {
    const invocation = this.#invocations.get(fnName);
    if (invocation) return invocation;
    // A module that does not load and may export the name: say so rather than "not exported".
    const broken = [...this.#modules].filter(([, m]) => m.error && (m.exportNames === null || m.exportNames.includes(fnName)));
    if (broken.length > 0) {
      const reasons = broken.map(([file, m]) => `${file} failed to load: ${m.error?.message}`).join('; ');
      throw new HTTPException(503, { message: `${ErrorText.unavailable}: ${reasons}` });
    }
    return undefined;
  }

  async #load(): Promise<void> {
    const entries = await this.#entries();
    const next = new Map<string, LoadedModule>();
    for (const entry of entries) {
      const previous = this.#modules.get(entry.file);
      try {
        const namespace = await entry.load();
        next.set(entry.file, { invocations: collectFunctions(namespace, entry.exportNames ?? [], this.#adapt), exportNames: entry.exportNames, error: null });
      } catch (error) {
        const err = error instanceof Error ? error : new Error(String(error));
        this.#onError(entry.file, err);
        next.set(entry.file, { invocations: previous?.invocations ?? new Map(), exportNames: entry.exportNames, error: err });
      }
    }
    const invocations = new Map<string, Invocation>();
    for (const mod of next.values()) for (const [name, inv] of mod.invocations) invocations.set(name, inv);
    this.#modules = next;
    this.#invocations = invocations;
    this.#loadedAt = new Date().toISOString();
  }
}

/** Turns an export that is not a plain function (declarative, handler) into an invocation. */
export type Adapter = (name: string, value: unknown) => Invocation | undefined;

function collectFunctions(namespace: Record<string, unknown>, exportNames: readonly string[], adapt: Adapter): Map<string, Invocation> {
  const invocations = new Map<string, Invocation>();
  for (const name of exportNames) {
    if (!Object.prototype.hasOwnProperty.call(namespace, name)) continue;
    const value = namespace[name];
    // Adapters first: a handler definition is a function too, but never called in the host.
    const adapted = adapt(name, value);
    let invocation: Invocation | undefined = adapted;
    if (!invocation && typeof value === 'function') {
      const fn = value as (...args: unknown[]) => unknown;
      invocation = (ctx, args) => fn(ctx, ...args);
    }
    if (!invocation) continue;
    // Each adapter returns a fresh closure per export, so tagging it is safe.
    Object.defineProperty(invocation, 'kind', { value: functionKindOf(value) });
    invocations.set(name, invocation);
  }
  return invocations;
}
