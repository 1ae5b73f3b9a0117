import { describe, expect, it } from 'vitest';
import { defineSchema, defineTable } from '../../runtime/schema.js';
import { v } from '../../runtime/validators.js';
import { UsageError } from '../common/usage-error.js';
import { schemaOf } from './schema-loader.js';

const tables = { notes: defineTable({ body: v.string() }) };
const schema = defineSchema(tables, { storage: { theme: v.string() } });

/** A module namespace as `import()` gives it (null prototype, tagged "Module"). */
function moduleOf(exports: Record<string, unknown>): Record<string, unknown> {
  return Object.freeze(Object.assign(Object.create(null), exports, { [Symbol.toStringTag]: 'Module' }));
}

describe('schemaOf: the one reading of a schema module', () => {
  it('takes the default export, or else `export const schema`', () => {
    expect(schemaOf(moduleOf({ default: schema }), 'server/schema.ts')).toBe(schema);
    expect(schemaOf(moduleOf({ schema }), 'server/schema.ts')).toBe(schema);
  });

  it('takes the default export even when the module also exports a `tables` object', () => {
    const found = schemaOf(moduleOf({ tables, default: schema }), 'server/schema.ts');
    expect(found).toBe(schema);
    expect(found.storage).not.toBeNull();
  });

  it('takes a definition itself (what bundles built before carried), but never a bare namespace', () => {
    expect(schemaOf(schema, 'server-functions.js')).toBe(schema);
    expect(() => schemaOf(moduleOf({ tables }), 'server/schema.ts')).toThrow(UsageError);
  });

  it('refuses a module without a schema, naming the file and the fix', () => {
    const error = (() => {
      try {
        schemaOf(moduleOf({ notes: 1 }), 'server/schema.ts', '/repo/server/schema.ts');
      } catch (e) {
        return e as UsageError;
      }
      throw new Error('no error');
    })();
    expect(error).toBeInstanceOf(UsageError);
    expect(error.message).toBe('server/schema.ts must "export default defineSchema({...})"');
    expect(error.file).toBe('/repo/server/schema.ts');
  });
});
