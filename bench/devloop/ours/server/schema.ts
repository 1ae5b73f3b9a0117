import { defineSchema, defineTable, v } from '@favn/vite-plugin-server-fns/server';

export default defineSchema({
  items: defineTable({ text: v.string(), done: v.boolean() }),
});
