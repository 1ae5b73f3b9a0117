import { HTTPException } from 'hono/http-exception';
import { isHandler } from '../../runtime/handlers.js';
import { SERVER_FUNCTION } from '../../runtime/declarative.js';
import { ErrorText } from '../../runtime/protocol.js';
import type { Invocation } from './executor.js';
import type { Adapter } from './module-executor.js';
import type { IsolateRunner } from '../isolate/isolate-runner.js';

/**
 * Lets the module executor run `query`/`mutation`/`action` exports in the feature's isolates.
 * The isolate runs the bundled copy of the handler, never the one loaded in the host.
 */
export function handlerAdapter(runner: IsolateRunner): Adapter {
  return (name, value): Invocation | undefined => {
    if (!isHandler(value)) return undefined;
    const kind = value[SERVER_FUNCTION];
    if (runner.kindOf(name) === kind) return runner.invocation(name, kind);
    if (runner.loadError) {
      const reason = runner.loadError;
      return () => {
        throw new HTTPException(503, { message: `${ErrorText.unavailable}: the handler bundle could not be built: ${reason}` });
      };
    }
    return () => {
      throw new HTTPException(500, {
        message:
          `${name} is a ${kind} handler, but it is not declared where it is exported, so it was not bundled for the isolate. ` +
          `Write "export const ${name} = ${kind}({...})" in a *.server.* module, with ${kind} imported from '@favn/vite-plugin-server-fns/server'.`,
      });
    };
  };
}

/** The first adapter that takes an export wins. */
export function combineAdapters(...adapters: Adapter[]): Adapter {
  return (name, value) => {
    for (const adapt of adapters) {
      const invocation = adapt(name, value);
      if (invocation) return invocation;
    }
    return undefined;
  };
}

/**
 * isolated-vm asks Node 20+ to run with `--no-node-snapshot` (V8's shared read-only heap can crash
 * a process whose isolates come from different snapshots). A warning when it is missing.
 */
export function nodeSnapshotWarning(): string | null {
  const major = Number(process.versions.node.split('.')[0]);
  if (major < 20 || process.execArgv.includes('--no-node-snapshot') || /--no-node-snapshot\b/.test(process.env.NODE_OPTIONS ?? '')) return null;
  return 'Handler functions run in isolated-vm, which needs Node started with --no-node-snapshot. Run e.g. NODE_OPTIONS=--no-node-snapshot vite (the favn CLI sets it itself).';
}
