// The tables of the function table tests.
import { defineSchema, defineTable, v } from '@favn/vite-plugin-server-fns/server';

export default defineSchema({
  notes: defineTable({ body: v.string() }),
});
