import { HANDLER_KINDS, SERVER_FUNCTION } from '../../runtime/kinds.js';
import { isHandler } from '../../runtime/handlers.js';
import { RequestError } from '../../runtime/request-error.js';
import { UsageError } from '../common/usage-error.js';
import type { IsolateRunner } from '../isolate/isolate-runner.js';
import type { Executor, Invocation } from './executor.js';

/**
 * Runs `query`/`mutation`/`action` exports in the feature's isolates, with their memory and CPU
 * limits. The isolate runs the bundled copy of the handler, never the one loaded in the host.
 *
 * @example
 * new IsolateExecutor(runner).invocation('topRules', topRules)?.(ctx, [3])
 */
export class IsolateExecutor implements Executor {
  readonly kinds = HANDLER_KINDS;
  readonly #runner: IsolateRunner;
  readonly #detailedErrors: boolean;

  /** `detailedErrors: false` (production): a 503 says the bundle did not load, the log says why. */
  constructor(runner: IsolateRunner, options: { detailedErrors?: boolean | undefined } = {}) {
    this.#runner = runner;
    this.#detailedErrors = options.detailedErrors ?? true;
  }

  invocation(name: string, value: unknown): Invocation | undefined {
    if (!isHandler(value)) return undefined;
    const kind = value[SERVER_FUNCTION];
    const runner = this.#runner;
    if (runner.kindOf(name) === kind) return (ctx, args) => runner.run(kind, name, ctx, args);
    if (runner.loadError) {
      const reason = this.#detailedErrors ? `: ${runner.loadError}` : ' (the host logged why)';
      return () => {
        throw RequestError.of('unavailable', `the handler bundle did not load${reason}`);
      };
    }
    throw new UsageError(
      `${name} is a ${kind} handler, but it is not declared where it is exported, so it was not bundled for the isolate. ` +
        `Write "export const ${name} = ${kind}({...})" in a *.server.* module, with ${kind} imported from '@favn/vite-plugin-server-fns/server'.`,
    );
  }

  close(): void {
    this.#runner.close();
  }
}

/**
 * isolated-vm asks Node 20+ to run with `--no-node-snapshot` (V8's shared read-only heap can crash
 * a process whose isolates come from different snapshots). A warning when it is missing.
 */
export function nodeSnapshotWarning(): string | null {
  const major = Number(process.versions.node.split('.')[0]);
  if (
    major < 20 ||
    process.execArgv.includes('--no-node-snapshot') ||
    /--no-node-snapshot\b/.test(process.env.NODE_OPTIONS ?? '')
  )
    return null;
  return 'Handler functions run in isolated-vm, which needs Node started with --no-node-snapshot. Run e.g. NODE_OPTIONS=--no-node-snapshot vite (the favn CLI sets it itself).';
}
