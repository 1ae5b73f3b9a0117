// The schema the compiler tests share: rules (with a union, an optional JSON column and an index)
// and per-user notes.
import { defineSchema, defineTable } from '../../../runtime/schema.js';
import { v } from '../../../runtime/validators.js';
import { modelSchema } from '../table-model.js';

export const schema = defineSchema({
  rules: defineTable({
    text: v.string(),
    votes: v.int(),
    kind: v.union(v.literal('must'), v.literal('should')),
    tags: v.optional(v.json()),
  }).index('by_votes', ['votes']),
  notes: defineTable({ body: v.string(), ownerId: v.string() }),
});
export const model = modelSchema('feature-rules', schema);
export const rules = model.tables.get('rules')!;
export const notes = model.tables.get('notes')!;
