import type { ServerContext } from '../../runtime/server.js';

/**
 * What one call read: the tables of its `queryRows` and `ctx.db` reads, and whether it wrote. The
 * host records it for calls that subscribe (live queries); other calls carry none and pay nothing.
 */
export interface ReadSet {
  tables: Set<string>;
  wrote: boolean;
}

const READ_SET = Symbol('favn.readSet');

type Tracked = ServerContext & { [READ_SET]?: ReadSet };

/** Starts recording what the call of `ctx` reads; returns the set it fills. */
export function trackReads(ctx: ServerContext): ReadSet {
  const reads: ReadSet = { tables: new Set(), wrote: false };
  Object.defineProperty(ctx, READ_SET, { value: reads });
  return reads;
}

/** The read set of the call of `ctx`, when it records one. */
export function readSetOf(ctx: ServerContext): ReadSet | undefined {
  return (ctx as Tracked)[READ_SET];
}
