/**
 * The scale bench's server functions: a feature with a table, two isolate handlers and one plain
 * function, copied many times under different ids. `listNotes` is the first call of each copy.
 */
import { mutation, query, v, type ServerContext } from '@favn/vite-plugin-server-fns/server';

/** The first page of notes, in an isolate (reads the feature's table). */
export const listNotes = query({ handler: async (ctx) => (await ctx.db.query('notes', { limit: 10 })).rows });

/** Adds one note, in an isolate. */
export const addNote = mutation({
  args: [v.string()],
  handler: (ctx, title) => ctx.db.insert('notes', { title, rank: title.length }),
});

/** A plain function, in the host. */
export async function hello(_ctx: ServerContext, name: string) {
  return `hello ${name}`;
}
