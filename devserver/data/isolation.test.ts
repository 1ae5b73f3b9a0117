import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres, type TestPostgres } from '../../fixtures/postgres.js';
import { defineSchema, defineTable } from '../../runtime/schema.js';
import type { ServerContext } from '../../runtime/server.js';
import { v } from '../../runtime/validators.js';
import { migrate } from './migrate.js';
import { openPglite } from './pglite-client.js';
import { openPostgres } from './postgres-client.js';
import type { SqlClient } from './sql-client.js';
import { FeatureData } from './feature-data.js';
import { modelSchema } from './table-model.js';

const schemaA = defineSchema({ secrets: defineTable({ value: v.string() }) });
const schemaB = defineSchema({ notes: defineTable({ body: v.string() }) });
const ctx = {
  requestId: 'r',
  featureId: 'x',
  auth: { userId: null },
  signal: new AbortController().signal,
} as unknown as ServerContext;

let postgres: TestPostgres | undefined;
beforeAll(async () => {
  postgres = await startPostgres();
});
afterAll(async () => {
  await postgres?.stop();
});

describe.each(['pglite', 'postgres'] as const)('feature isolation on %s', (engine) => {
  let client: SqlClient;
  let a: FeatureData;
  let b: FeatureData;

  beforeAll(async () => {
    client = engine === 'pglite' ? await openPglite(null) : await openPostgres(await postgres!.createDatabase());
    const modelA = modelSchema('feature-a', schemaA);
    const modelB = modelSchema('feature-b', schemaB);
    await migrate(client, modelA);
    await migrate(client, modelB);
    a = new FeatureData(client, modelA);
    b = new FeatureData(client, modelB);
    await a.db(ctx).insert('secrets', { value: 'only for feature A' });
  });
  afterAll(async () => {
    await client?.close();
  });

  it("feature B's ctx.db cannot name feature A's table, however the name is crafted", async () => {
    const db = b.db(ctx);
    for (const table of [
      'secrets',
      'ext_feature_a.secrets',
      '"ext_feature_a"."secrets"',
      '../secrets',
      'secrets; --',
      '__proto__',
      'constructor',
    ]) {
      await expect(db.query(table)).rejects.toThrow(/there is no table/);
      await expect(db.insert(table, { value: 'x' })).rejects.toThrow(/there is no table/);
    }
    expect((await a.db(ctx).query('secrets')).rows.map((r) => r.value)).toEqual(['only for feature A']);
  });

  it("feature B's role is refused by the database itself on A's schema (read and write)", async () => {
    await expect(client.transaction(b.model.role, (q) => q('SELECT * FROM "ext_feature_a"."secrets"'))).rejects.toThrow(
      /permission denied/,
    );
    await expect(
      client.transaction(b.model.role, (q) => q(`INSERT INTO "ext_feature_a"."secrets" ("value") VALUES ('x')`)),
    ).rejects.toThrow(/permission denied/);
    await expect(
      client.transaction(b.model.role, (q) => q('CREATE TABLE "ext_feature_a"."intruder" (x int)')),
    ).rejects.toThrow(/permission denied/);
    // Its own tables work under the same mechanism.
    expect(
      await client.transaction(b.model.role, (q) => q('SELECT count(*)::int AS n FROM "ext_feature_b"."notes"')),
    ).toEqual([{ n: 0 }]);
  });

  it('a read-only transaction refuses writes', async () => {
    await expect(
      client.transaction(a.model.role, (q) => q(`INSERT INTO "ext_feature_a"."secrets" ("value") VALUES ('x')`), {
        readOnly: true,
      }),
    ).rejects.toThrow(/read-only transaction/);
  });
});
