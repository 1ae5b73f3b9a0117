import type { Executor, Invocation } from './executor.js';

/**
 * Runs plain server functions in the host process: `export async function f(ctx, ...args)`. The
 * function gets the call's `ServerContext` first, then the client's arguments.
 *
 * @example
 * new ModuleExecutor().invocation('getData', getData)?.(ctx, [42])
 */
export class ModuleExecutor implements Executor {
  readonly kinds = ['plain'] as const;

  invocation(_name: string, value: unknown): Invocation | undefined {
    if (typeof value !== 'function') return undefined;
    const fn = value as (...args: unknown[]) => unknown;
    return (ctx, args) => fn(ctx, ...args);
  }
}
