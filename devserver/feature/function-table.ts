import { functionKindOf } from '../../runtime/kinds.js';
import { RequestError } from '../../runtime/request-error.js';
import { withTimeout } from '../common/with-timeout.js';
import type { Executor, Invocation } from '../executors/executor.js';

/**
 * Longest wait for one module to load. A module whose top-level await never settles would hold
 * every later load (and every call waiting for one); past this it counts as failed to load, so
 * its last good version serves and a fixing save loads again.
 */
export const MODULE_LOAD_TIMEOUT_MS = 15_000;

/** One server module the table loads: its scanned export names and how to import it. */
export interface ModuleEntry {
  /** Name for messages (relative path, or the endpoint's URL). */
  file: string;
  /** Export names found by the static scan (`null` when the scan failed); only these are callable. */
  exportNames: readonly string[] | null;
  /** Imports (or re-imports) the module and returns its namespace. */
  load(): Promise<Record<string, unknown>> | Record<string, unknown>;
}

/** What `/_health` and `/_admin` show about a feature's functions. */
export interface FunctionsStatus {
  /** Names that can run right now. */
  exports: string[];
  /** When the current code was loaded (ISO string), `null` before the first load. */
  loadedAt: string | null;
  /** Why some or all of the code is not loaded, `null` when everything loaded. */
  error: string | null;
}

interface LoadedModule {
  invocations: Map<string, Invocation>;
  exportNames: readonly string[] | null;
  error: Error | null;
}

/**
 * A feature's callable functions: loads its server modules and hands each scanned export to the
 * executor of its kind. Dispatch is by own export name from the scanned list only, so
 * `constructor`, `__proto__` or `toString` can never be called. A module that fails to (re)load
 * keeps its last good version serving; calls made while a load is under way wait for it.
 *
 * @example
 * const table = new FunctionTable('module', async () => [{ file, exportNames, load: () => import(url) }], [new ModuleExecutor()])
 * await table.reload()
 * const invocation = await table.resolve('getData')
 */
export class FunctionTable {
  /** `endpoint` when every function runs on the feature's own backend. */
  readonly mode: 'module' | 'endpoint';
  #entries: () => ModuleEntry[] | Promise<ModuleEntry[]>;
  #executors: readonly Executor[];
  #modules = new Map<string, LoadedModule>();
  #invocations = new Map<string, Invocation>();
  #pending: Promise<void> | null;
  #loaded: () => void = () => {};
  #queue: Promise<void> = Promise.resolve();
  #loadedAt: string | null = null;
  #onError: (file: string, error: Error) => void;
  #loadTimeoutMs: number;
  #detailedErrors: boolean;

  constructor(
    mode: 'module' | 'endpoint',
    entries: () => ModuleEntry[] | Promise<ModuleEntry[]>,
    executors: readonly Executor[],
    options: {
      onError?: (file: string, error: Error) => void;
      loadTimeoutMs?: number;
      /** Say why a module failed in the 503 (dev); `false`: only that it failed (production logs why). */
      detailedErrors?: boolean;
    } = {},
  ) {
    this.mode = mode;
    this.#entries = entries;
    this.#executors = executors;
    this.#onError = options.onError ?? (() => {});
    this.#loadTimeoutMs = options.loadTimeoutMs ?? MODULE_LOAD_TIMEOUT_MS;
    this.#detailedErrors = options.detailedErrors ?? true;
    // Calls that arrive before the first load wait for it (a dev server answers while starting).
    this.#pending = new Promise<void>((resolve) => (this.#loaded = resolve));
  }

  /**
   * Loads every module again; calls made meanwhile wait for it, calls in flight keep old code.
   * Loads run one after another, never interleaved: a save during a load loads again after it.
   */
  reload(): Promise<void> {
    const first = this.#loaded;
    const run = this.#queue.then(() => this.#load()).finally(first);
    this.#queue = run.catch(() => {});
    const pending = run.finally(() => {
      if (this.#pending === pending) this.#pending = null;
    });
    this.#pending = pending;
    return pending;
  }

  /**
   * The invocation for `fnName`, or `undefined` when the code has no such own export. Throws a
   * 503 `RequestError` when the code that should have it is not loaded. Returns a promise only
   * while a load is under way.
   */
  resolve(fnName: string): Invocation | undefined | Promise<Invocation | undefined> {
    if (this.#pending) return this.#pending.then(() => this.#lookup(fnName));
    return this.#lookup(fnName);
  }

  status(): FunctionsStatus {
    // /_health is public: in production it says which module failed, not why (the log does).
    const errors = [...this.#modules]
      .filter(([, m]) => m.error)
      .map(([file, m]) => (this.#detailedErrors ? m.error?.message : `${file} failed to load (the host logged why)`));
    return {
      exports: [...this.#invocations.keys()],
      loadedAt: this.#loadedAt,
      error: errors.length ? errors.join('\n') : null,
    };
  }

  /** Frees what the executors hold. */
  close(): void {
    for (const executor of this.#executors) executor.close?.();
  }

  #lookup(fnName: string): Invocation | undefined {
    const invocation = this.#invocations.get(fnName);
    if (invocation) return invocation;
    // A module that does not load and may export the name: say so rather than "not exported".
    const broken = [...this.#modules].filter(
      ([, m]) => m.error && (m.exportNames === null || m.exportNames.includes(fnName)),
    );
    if (broken.length > 0) {
      const reason = (m: LoadedModule) => (this.#detailedErrors ? `: ${m.error?.message}` : ' (the host logged why)');
      const reasons = broken.map(([file, m]) => `${file} failed to load${reason(m)}`).join('; ');
      throw RequestError.of('unavailable', reasons);
    }
    return undefined;
  }

  async #load(): Promise<void> {
    const entries = await this.#entries();
    const next = new Map<string, LoadedModule>();
    for (const entry of entries) {
      const previous = this.#modules.get(entry.file);
      let loaded: LoadedModule;
      try {
        const ms = this.#loadTimeoutMs;
        const late = () =>
          new Error(`${entry.file} did not finish loading within ${ms} ms (a top-level await that never settles?)`);
        const namespace = await withTimeout(entry.load(), ms, late);
        loaded = this.#collect(namespace, entry.exportNames);
      } catch (error) {
        loaded = {
          invocations: previous?.invocations ?? new Map(),
          exportNames: entry.exportNames,
          error: asError(error),
        };
      }
      if (loaded.error) this.#onError(entry.file, loaded.error);
      next.set(entry.file, loaded);
    }
    const invocations = new Map<string, Invocation>();
    for (const mod of next.values()) for (const [name, inv] of mod.invocations) invocations.set(name, inv);
    this.#modules = next;
    this.#invocations = invocations;
    this.#loadedAt = new Date().toISOString();
  }

  /**
   * The invocations of one module's scanned exports. An export its executor refuses (a usage
   * error such as a `queryRows` of an unknown table) is the module's error, reported now; the
   * module's other exports still run.
   */
  #collect(namespace: Record<string, unknown>, exportNames: readonly string[] | null): LoadedModule {
    const invocations = new Map<string, Invocation>();
    const problems: string[] = [];
    const refused: string[] = [];
    for (const name of exportNames ?? []) {
      if (!Object.prototype.hasOwnProperty.call(namespace, name)) continue;
      const value = namespace[name];
      const kind = functionKindOf(value);
      const executor = this.#executors.find((e) => e.kinds.includes(kind));
      let invocation: Invocation | undefined;
      try {
        invocation = executor?.invocation(name, value);
      } catch (error) {
        problems.push(asError(error).message);
        refused.push(name);
        continue;
      }
      if (!invocation) continue;
      // Each executor returns a fresh closure per export, so tagging it is safe.
      Object.defineProperty(invocation, 'kind', { value: kind });
      invocations.set(name, invocation);
    }
    if (problems.length === 0) return { invocations, exportNames, error: null };
    // Only the refused exports are broken: `#lookup` answers 503 with the reason for those alone.
    return { invocations, exportNames: refused, error: new Error(problems.join('\n')) };
  }
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
