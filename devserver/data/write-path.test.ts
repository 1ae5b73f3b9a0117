import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { deleteRow, insertRow, patchRow, queryRows } from '../../runtime/declarative.js';
import { defineSchema, defineTable } from '../../runtime/schema.js';
import type { ServerContext } from '../../runtime/server.js';
import { v } from '../../runtime/validators.js';
import { FeatureData, type CommittedChange } from './feature-data.js';
import { migrate, STORAGE_TABLE } from './migrate.js';
import { openPglite } from './pglite-client.js';
import type { SqlClient } from './sql-client.js';
import { modelSchema, quoteIdent } from './table-model.js';

const schema = defineSchema(
  { notes: defineTable({ body: v.string() }), tags: defineTable({ n: v.number() }) },
  { storage: { theme: v.optional(v.string()) } },
);
const ctx = {
  requestId: 'r',
  featureId: 'feature-writes',
  auth: { userId: 'u1' },
  signal: new AbortController().signal,
} as unknown as ServerContext;

describe('the write path: committed changes are reported once, after the commit', () => {
  let client: SqlClient;
  let data: FeatureData;
  let changes: string[][];

  beforeAll(async () => {
    client = await openPglite(null);
    const model = modelSchema('feature-writes', schema);
    await migrate(client, model);
    data = new FeatureData(client, model);
    data.onCommit((change: CommittedChange) => changes.push([...change.tables].sort()));
  });
  afterAll(async () => {
    await client.close();
  });
  beforeEach(() => {
    changes = [];
  });

  it('reports each declarative write, and no read', async () => {
    const note = (await data.run(insertRow('notes'), 'addNote', ctx, [{ body: 'a' }])) as { id: string };
    await data.run(patchRow('notes'), 'editNote', ctx, [note.id, { body: 'b' }]);
    await data.run(queryRows('notes'), 'listNotes', ctx, [{}]);
    await data.run(deleteRow('notes'), 'removeNote', ctx, [note.id]);
    expect(changes).toEqual([['notes'], ['notes'], ['notes']]);
  });

  it('reports ctx.db writes, and a transaction once with every table it wrote', async () => {
    await data.db(ctx).insert('notes', { body: 'plain' });
    await data.db(ctx).transaction(async (tx) => {
      await tx.insert('notes', { body: 'one' });
      await tx.insert('tags', { n: 1 });
      await tx.query('notes');
    });
    expect(changes).toEqual([['notes'], ['notes', 'tags']]);
  });

  it('reports nothing for a transaction that rolls back or only reads', async () => {
    const failed = data
      .db(ctx)
      .transaction(async (tx) => {
        await tx.insert('notes', { body: 'never committed' });
        throw new Error('changed my mind');
      })
      .catch((e: Error) => e.message);
    expect(await failed).toBe('changed my mind');
    await data.db(ctx).transaction(async (tx) => void (await tx.query('notes')));
    // A write refused by validation never reached the database.
    await expect(data.db(ctx).insert('notes', { body: 42 })).rejects.toThrow(/Invalid arguments/);
    expect(changes).toEqual([]);
  });

  it('reports writes of any statement this host generates through the client (the settings document)', async () => {
    const table = `${quoteIdent(data.model.schema)}.${quoteIdent(STORAGE_TABLE)}`;
    await data.client.transaction(data.model.role, (q) =>
      q(`INSERT INTO ${table} ("key", "doc") VALUES ($1, $2::jsonb)`, ['k', '{}']),
    );
    expect(changes).toEqual([['_storage']]);
  });

  it('keeps the write committed when a listener throws, and tells the other listeners', async () => {
    const seen: number[] = [];
    const stopThrowing = data.onCommit(() => {
      throw new Error('listener broke');
    });
    const stopRejecting = data.onCommit(async () => {
      throw new Error('async listener broke');
    });
    const stopCounting = data.onCommit(() => void seen.push(1));
    try {
      await data.db(ctx).insert('notes', { body: 'kept' });
    } finally {
      stopThrowing();
      stopRejecting();
      stopCounting();
    }
    expect(seen).toEqual([1]);
    const { rows } = await data.db(ctx).query('notes', { where: { body: { eq: 'kept' } } });
    expect(rows).toHaveLength(1);
  });
});
