import { defineSchema, defineTable, v } from '@favn/vite-plugin-server-fns/server';

// The playground's tables. In dev they live in PGlite in `.favn/db` (kept across restarts); every row
// also gets `id` and `createdAt`. Saving this file migrates the database at once.
export default defineSchema({
  notes: defineTable({ text: v.string(), author: v.string() }),
});
