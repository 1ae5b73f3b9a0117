/**
 * The isolate bench's server functions: each workload twice, once as a `query` handler (run in an
 * isolate) and once as a plain function (run in the host process), doing the same work and
 * returning the same value.
 */
import { mutation, query, v, type ServerContext } from '@favn/vite-plugin-server-fns/server';

/** Trivial work, in an isolate. */
export const trivialHandler = query({ handler: () => ({ ok: true, n: 1 }) });

/** Trivial work, in the host. */
export async function trivialPlain(_ctx: ServerContext) {
  return { ok: true, n: 1 };
}

// Neither variant validates its argument, so the pair differs only in where it runs.

/** One row by id, in an isolate. */
export const getItemHandler = query({ handler: (ctx, id: string) => ctx.db.get('items', id) });

/** One row by id, in the host. */
export async function getItemPlain(ctx: ServerContext, id: string) {
  return ctx.db.get('items', id);
}

/** Inserts rows `item first` .. `item first + count - 1` in one transaction; returns their ids in order. */
export const seedItems = mutation({
  args: [v.int(), v.int()],
  handler: async (ctx, first, count) => {
    const ids: string[] = [];
    for (let i = first; i < first + count; i++) {
      const row = await ctx.db.insert('items', { name: `item ${i}`, rank: (i * 37) % 1000 });
      ids.push(row.id as string);
    }
    return ids;
  },
});
