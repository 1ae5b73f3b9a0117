// Handlers the isolate runner tests run (bundled with the real bundler, run in real isolates).
import { action, httpError, mutation, query, v } from '@favn/vite-plugin-server-fns/server';

/** Keeps the CPU busy for about `n` loop rounds (no timers exist in the isolate). */
function busy(n: number): number {
  let x = 0;
  for (let i = 0; i < n; i++) x = (x + i) % 1_000_003;
  return x;
}

export const double = query({ args: [v.number()], handler: (_ctx, n) => n * 2 });

export const nothing = query({ handler: () => undefined });

export const whoAmI = query({
  handler: (ctx) => ({
    featureId: ctx.featureId,
    userId: ctx.auth.userId,
    tenantId: ctx.visibility.tenantId,
    roles: ctx.userRoles,
  }),
});

export const countNotes = query({ handler: async (ctx) => (await ctx.db.query('notes', { limit: 1000 })).rows.length });

export const addNote = mutation({
  args: [v.string()],
  handler: async (ctx, body) => {
    const row = await ctx.db.insert('notes', { body });
    return { body: row.body, hasId: typeof row.id === 'string' };
  },
});

/** A mutation that writes nothing: it runs in a feature without tables too. */
export const bump = mutation({ args: [v.number()], handler: (_ctx, n) => n + 1 });

export const addThenConflict = mutation({
  args: [v.string()],
  handler: async (ctx, body) => {
    await ctx.db.insert('notes', { body });
    throw httpError(409, 'This note was changed by someone else');
  },
});

export const greet = action({
  args: [v.string()],
  handler: async (ctx, name) => `hello ${name}, your key has ${ctx.secrets.GREETING_KEY?.length ?? 0} characters`,
});

export const countFromAction = action({ handler: async (ctx) => ctx.runQuery(countNotes) });

export const conflict = query({
  handler: () => {
    throw httpError(409, 'This note was changed by someone else');
  },
});

export const fails = query({
  handler: () => {
    throw new Error('the database password is hunter2');
  },
});

export const spin = query({
  handler: () => {
    for (;;) busy(1000);
  },
});

export const hog = query({
  handler: () => {
    const keep: number[][] = [];
    for (;;) keep.push(Array.from({ length: 100_000 }, (_, i) => i));
  },
});

export const neverSettles = query({ handler: () => new Promise(() => {}) });

export const actionNeverSettles = action({ handler: () => new Promise(() => {}) });

export const work = query({ args: [v.int(), v.int()], handler: (_ctx, id, rounds) => (busy(rounds), id) });

export const version = query({ args: [v.int()], handler: (_ctx, rounds) => (busy(rounds), 1) });

// Module state: it lasts as long as the caller's context in the isolate.
let tally = 0;
export const count = query({ handler: () => ++tally });
