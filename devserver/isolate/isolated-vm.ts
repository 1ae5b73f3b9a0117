import { createRequire } from 'node:module';
import { UsageError } from '../common/usage-error.js';

/**
 * The part of isolated-vm's API the isolate pool uses. Written here rather than imported, so the
 * package's types (and a user's `tsc`) never depend on which isolated-vm build is installed, or
 * whether one is.
 */
export interface IsolatedVm {
  Isolate: new (options: { memoryLimit: number }) => IvmIsolate;
  Reference: new <T>(value: T) => IvmReference<T>;
}

export interface IvmIsolate {
  readonly isDisposed: boolean;
  /** CPU time used so far, in nanoseconds. */
  readonly cpuTime: bigint;
  compileScriptSync(code: string, options?: { filename?: string }): IvmScript;
  createContext(): Promise<IvmContext>;
  dispose(): void;
}

export interface IvmContext {
  evalClosure(code: string, args: unknown[], options: { result: { reference: true } }): Promise<IvmReference<unknown>>;
  release(): void;
}

export interface IvmScript {
  run(context: IvmContext, options?: { timeout?: number }): Promise<unknown>;
}

export interface IvmReference<T> {
  get<K extends keyof T & string>(property: K, options: { reference: true }): Promise<IvmReference<T[K]>>;
  apply(receiver: undefined, args: unknown[], options?: { timeout?: number }): Promise<unknown>;
}

/**
 * The builds tried, newest first. The package depends on both as optional aliases: npm installs
 * the ones whose `engines` and binaries fit the running Node (7.x: Node 24 and 26, 6.x: Node 22
 * and 24), each with prebuilt binaries, so no compiler is needed. A user's own `isolated-vm` is
 * the last resort (e.g. a build compiled for another Node line).
 */
export const ISOLATED_VM_BUILDS = ['isolated-vm-7', 'isolated-vm-6', 'isolated-vm'] as const;

/** The isolated-vm release that ships a prebuilt binary for a Node major, as an install command. */
export function isolatedVmInstallCommand(nodeMajor: number): string {
  if (nodeMajor >= 24) return 'npm install isolated-vm@7.0.1';
  if (nodeMajor >= 22) return 'npm install isolated-vm@6.2.0';
  return 'npm install isolated-vm@5.0.4 (compiles from source: needs python3, make and a C++ compiler)';
}

let loaded: IsolatedVm | null = null;

/**
 * isolated-vm for the running Node, loaded on first use (a feature without handlers never loads
 * it). Throws a `UsageError` naming the install command for this Node when no build loads.
 *
 * @example
 * const ivm = isolatedVm()
 * const isolate = new ivm.Isolate({ memoryLimit: 128 })
 */
export function isolatedVm(): IsolatedVm {
  if (loaded) return loaded;
  loaded = loadFirst(ISOLATED_VM_BUILDS, createRequire(import.meta.url));
  return loaded;
}

/** The first of `names` that `require` loads; the error says why each failed and how to fix it. */
export function loadFirst(names: readonly string[], require: (name: string) => unknown): IsolatedVm {
  const tried: string[] = [];
  for (const name of names) {
    try {
      const ivm = require(name) as IsolatedVm;
      if (typeof ivm?.Isolate === 'function' && typeof ivm.Reference === 'function') return ivm;
      tried.push(`${name}: does not look like isolated-vm`);
    } catch (error) {
      tried.push(`${name}: ${whyNot(error)}`);
    }
  }
  const version = process.versions.node;
  const major = Number(version.split('.')[0]);
  throw new UsageError(
    `Handler functions (query/mutation/action) need isolated-vm, and no build of it loads on Node ${version} ` +
      `(${process.platform}-${process.arch}, ABI ${process.versions.modules}). Supported Node lines: 22, 24 and 26. ` +
      `Fix: run \`${isolatedVmInstallCommand(major)}\` in the feature repo, then restart. Tried:\n  ${tried.join('\n  ')}`,
  );
}

function whyNot(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  if (code === 'MODULE_NOT_FOUND') return 'not installed';
  return String((error as Error)?.message ?? error).split('\n', 1)[0] ?? 'failed to load';
}
