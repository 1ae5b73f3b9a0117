import { deleteRow, httpError, mutation, query, queryRows, v } from '@favn/vite-plugin-server-fns/server';

const MAX_LENGTH = 200;

// Declarative functions: each compiles once to parameterized SQL, no JavaScript of ours runs per call.
// Newest first (the default order is createdAt, descending).
export const listNotes = queryRows('notes', { maxLimit: 50 });
// Only the author may delete a note: `author` is bound from the caller's identity, never from the client.
export const deleteNote = deleteRow('notes', { scope: { author: 'auth.userId' } });

// Handlers run in a V8 isolate with memory and CPU limits, not in the dev server's own process: they
// see no `process`, no `require`, nothing of Node.
export const addNote = mutation({
  args: [v.string()],
  handler: async (ctx, text) => {
    if (!ctx.auth.userId) throw httpError(401, 'Pick a user to add notes');
    const clean = text.trim();
    if (clean === '') throw httpError(422, 'Note text must not be empty');
    if (clean.length > MAX_LENGTH) throw httpError(422, `Note text must be at most ${MAX_LENGTH} characters`);
    return ctx.db.insert('notes', { text: clean, author: ctx.auth.userId });
  },
});

export const noteStats = query({
  handler: async (ctx) => {
    const { rows } = await ctx.db.query('notes', { limit: 1000 });
    const words = rows.flatMap((note) => note.text.split(/\s+/).filter(Boolean));
    return {
      notes: rows.length,
      authors: new Set(rows.map((note) => note.author)).size,
      words: words.length,
      longest: words.reduce((a, b) => (b.length > a.length ? b : a), ''),
      sandboxed: typeof (globalThis as { process?: unknown }).process === 'undefined',
    };
  },
});
