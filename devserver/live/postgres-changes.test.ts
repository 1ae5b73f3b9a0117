import { describe, expect, it } from 'vitest';
import { parseEvent, payloadOf } from './postgres-changes.js';

describe('change events between hosts: the NOTIFY payload', () => {
  it('carries feature, tenant and tables, and a host skips its own', () => {
    const payload = payloadOf({ featureId: 'feature-a', tenantId: 't1', tables: ['notes'] }, 'me');
    expect(parseEvent(payload, 'other')).toEqual({ featureId: 'feature-a', tenantId: 't1', tables: ['notes'] });
    expect(parseEvent(payload, 'me')).toBeNull();
  });

  it('keeps "every tenant" (no tenant) apart from the null tenant', () => {
    const every = parseEvent(payloadOf({ featureId: null, tables: null }, 'a'), 'b');
    expect(every).toEqual({ featureId: null, tables: null });
    expect(every && 'tenantId' in every).toBe(false);
    expect(parseEvent(payloadOf({ featureId: 'f', tenantId: null, tables: [] }, 'a'), 'b')).toEqual({
      featureId: 'f',
      tenantId: null,
      tables: [],
    });
  });

  it('stays under PostgreSQL 8000-byte limit: an event with too many tables becomes "every table"', () => {
    const tables = Array.from({ length: 500 }, (_, i) => `a_rather_long_table_name_${i}`);
    const payload = payloadOf({ featureId: 'feature-a', tenantId: 't'.repeat(100), tables }, 'me');
    expect(Buffer.byteLength(payload)).toBeLessThan(8000);
    expect(parseEvent(payload, 'other')).toEqual({ featureId: 'feature-a', tables: null });
  });

  it('ignores malformed payloads (anyone with database access can NOTIFY)', () => {
    for (const bad of ['', 'not json', '[]', 'null', '{"f":1,"t":null}', '{"f":"x","t":"notes"}', '{"f":"x","t":[1]}'])
      expect(parseEvent(bad, 'me')).toBeNull();
  });
});
