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

/** Node lines with a prebuilt isolated-vm build among the package's optional dependencies. */
export const SUPPORTED_NODE_LINES = [22, 24, 26] as const;

/**
 * What to do when no build loads on Node `nodeMajor`. The builds come with the package as optional
 * dependencies, so reinstalling with this Node brings the right one; a line-specific package in the
 * feature's own dependencies would break a teammate's install on another line, so it is only the
 * last resort, and optional.
 *
 * @example
 * isolatedVmFix(26) // 'run `npm install` (or `npm ci`) in the feature repo with this Node, ...'
 */
export function isolatedVmFix(nodeMajor: number): string {
  if (!(SUPPORTED_NODE_LINES as readonly number[]).includes(nodeMajor)) {
    return `use Node ${SUPPORTED_NODE_LINES.join(', ')} (this is Node ${nodeMajor}), then run \`npm install\` again`;
  }
  const release = nodeMajor >= 24 ? '7.0.1' : '6.2.0';
  return (
    'run `npm install` (or `npm ci`) in the feature repo with this Node, without `--omit=optional`, then restart ' +
    `(the builds come with the package as optional dependencies). If that does not bring one: \`npm install --save-optional isolated-vm@${release}\``
  );
}

let loaded: IsolatedVm | null = null;

/**
 * isolated-vm for the running Node, loaded on first use (a feature without handlers never loads
 * it). Throws a `UsageError` saying what to do on this Node when no build loads.
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
      tried.push(`${name}: ${whyNot(error, name)}`);
    }
  }
  const version = process.versions.node;
  const major = Number(version.split('.')[0]);
  throw new UsageError(
    `Handler functions (query/mutation/action) need isolated-vm, and no build of it loads on Node ${version} ` +
      `(${process.platform}-${process.arch}, ABI ${process.versions.modules}). Supported Node lines: ${SUPPORTED_NODE_LINES.join(', ')}. ` +
      `Fix: ${isolatedVmFix(major)}. Tried:\n  ${tried.join('\n  ')}`,
  );
}

function whyNot(error: unknown, name: string): string {
  const code = (error as { code?: unknown } | null)?.code;
  const message = String((error as Error)?.message ?? error);
  // Only the build itself missing is "not installed"; a dependency of it missing is its own reason.
  if (code === 'MODULE_NOT_FOUND' && message.includes(`'${name}'`)) return 'not installed';
  return message.split('\n', 1)[0] ?? 'failed to load';
}
