import { defineSchema, defineTable, v } from '@favn/vite-plugin-server-fns/server';

export default defineSchema({
  items: defineTable({ name: v.string(), rank: v.int() }),
});
