import { defineSchema, defineTable, v } from '@favn/vite-plugin-server-fns/server';

export default defineSchema({
  notes: defineTable({ title: v.string(), rank: v.int() }),
});
