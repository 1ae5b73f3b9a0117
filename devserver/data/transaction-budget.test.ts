import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startPostgres, type TestPostgres } from '../../fixtures/postgres.js';
import { defineSchema, defineTable } from '../../runtime/schema.js';
import type { ServerContext } from '../../runtime/server.js';
import { v } from '../../runtime/validators.js';
import { parseManifest } from '../feature/manifest.js';
import { FeatureData } from './feature-data.js';
import { modelSchema } from './table-model.js';
import { migrate } from './migrate.js';
import { openPglite } from './pglite-client.js';
import { openPostgres } from './postgres-client.js';
import type { SqlClient } from './sql-client.js';
import { TransactionBudget, TransactionTimeoutError } from './transaction-budget.js';

// Short budgets keep the suite fast; the holders hold far longer, so "bounded by the budget" and
// "waited for the holder" are seconds apart even on a loaded machine.
const BUDGET_MS = 400;
const HOLD_MS = 3000;
const BOUNDED_MS = 2000;

const schema = defineSchema({ notes: defineTable({ body: v.string() }) });
const model = modelSchema('feature-budget', schema);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const since = (start: number) => performance.now() - start;

/** A call's context with its own `ctx.db`, as the host builds one per call. */
function callOf(data: FeatureData): ServerContext {
  const signal = new AbortController().signal;
  const ctx = {
    requestId: 'r',
    featureId: 'feature-budget',
    auth: { userId: null },
    signal,
  } as unknown as ServerContext;
  return Object.assign(ctx, { db: data.db(ctx) });
}

let postgres: TestPostgres | undefined;
beforeAll(async () => {
  postgres = await startPostgres();
});
afterAll(async () => {
  await postgres?.stop();
});

describe.each(['pglite', 'postgres'] as const)('transaction budget on %s', (engine) => {
  let client: SqlClient;
  let data: FeatureData;
  const bodies = async () =>
    (await callOf(data).db.query('notes', { limit: 1000 })).rows.map((r) => String(r.body)).sort();

  beforeAll(async () => {
    client = engine === 'pglite' ? await openPglite(null) : await openPostgres(await postgres!.createDatabase());
    await migrate(client, model);
    data = new FeatureData(client, model, { transactionTimeoutMs: BUDGET_MS });
  });
  beforeEach(async () => {
    await client.transaction(model.role, (q) => q(`DELETE FROM ${model.tables.get('notes')!.sql}`));
  });
  afterAll(async () => {
    await client?.close();
  });

  it('has a default budget per engine, and the feature budget applies to every transaction of its client', () => {
    expect(client.transactionTimeoutMs).toBe(engine === 'pglite' ? 1000 : 5000);
    expect(data.client.transactionTimeoutMs).toBe(BUDGET_MS);
    expect(new FeatureData(client, model).client.transactionTimeoutMs).toBe(client.transactionTimeoutMs);
  });

  it('rolls back a transaction held past its budget, fails it with a clear 503, and lets other calls proceed', async () => {
    const ctx = callOf(data);
    let lateWrite: unknown = 'not attempted';
    const started = performance.now();
    const holder = ctx.db.transaction(async (tx) => {
      await tx.insert('notes', { body: 'held' });
      await sleep(HOLD_MS);
      // Ignores the rollback and keeps going: this must fail, never run outside the transaction.
      lateWrite = await tx.insert('notes', { body: 'late' }).catch((error: unknown) => error);
    });
    const failure = holder.then(
      () => null,
      (error: unknown) => ({ error, ms: since(started) }),
    );
    await sleep(50);
    // Reads issued while the holder holds the database.
    const reads = await Promise.all(
      Array.from({ length: 20 }, async () => {
        const t = performance.now();
        const rows = await bodies();
        return { rows, ms: since(t) };
      }),
    );
    const result = await failure;
    expect(result?.error).toBeInstanceOf(TransactionTimeoutError);
    expect(result?.error).toMatchObject({ status: 503 });
    expect((result!.error as Error).message).toMatch(
      new RegExp(
        `^RPC execution timed out: the database transaction was held over ${BUDGET_MS} ms and was rolled back`,
      ),
    );
    expect(result!.ms).toBeGreaterThanOrEqual(BUDGET_MS - 5);
    expect(result!.ms).toBeLessThan(BOUNDED_MS);
    for (const read of reads) {
      expect(read.rows).not.toContain('held');
      expect(read.ms).toBeLessThan(BOUNDED_MS);
    }
    expect(await bodies()).toEqual([]);

    // The abandoned function resumes after its sleep: its statement is refused with the same error.
    await sleep(HOLD_MS - since(started) + 300);
    expect(lateWrite).toBeInstanceOf(TransactionTimeoutError);
    expect(await bodies()).toEqual([]);
    // The call's other database work is refused too, so nothing of it commits after the rollback.
    await expect(ctx.db.insert('notes', { body: 'after' })).rejects.toBeInstanceOf(TransactionTimeoutError);
    expect(await bodies()).toEqual([]);
  }, 20_000);

  it('does not count the time spent waiting for the database, only the time holding it', async () => {
    const hold = (body: string) =>
      callOf(data).db.transaction(async (tx) => {
        await tx.insert('notes', { body });
        await sleep(BUDGET_MS * 0.6);
      });
    // On PGlite the second waits for the first, then holds for 0.6 budget: 1.2 budgets in all.
    await Promise.all([hold('first'), hold('second')]);
    expect(await bodies()).toEqual(['first', 'second']);
  });

  it('answers the caller at once but settles its own promise only after the body (an isolate slot waits for it)', async () => {
    let expiredAt = 0;
    let bodyDoneAt = 0;
    const started = performance.now();
    const outcome = data.client
      .transaction(
        model.role,
        async (q) => {
          await q(`INSERT INTO ${model.tables.get('notes')!.sql} ("body") VALUES ('slot')`);
          await sleep(1500);
          bodyDoneAt = since(started);
          return 'done';
        },
        { onExpire: () => (expiredAt = since(started)) },
      )
      .catch((error: unknown) => error);
    await sleep(BUDGET_MS + 200);
    // The database is free long before the body ends.
    const t = performance.now();
    expect(await bodies()).toEqual([]);
    expect(since(t)).toBeLessThan(700);
    const error = await outcome;
    expect(error).toBeInstanceOf(TransactionTimeoutError);
    expect(expiredAt).toBeGreaterThanOrEqual(BUDGET_MS - 5);
    expect(expiredAt).toBeLessThan(BOUNDED_MS);
    expect(bodyDoneAt).toBeGreaterThanOrEqual(1400);
    expect(since(started)).toBeGreaterThanOrEqual(bodyDoneAt);
    expect(await bodies()).toEqual([]);
  }, 20_000);

  it('ends a transaction that waits on ctx.db outside itself (a deadlock on PGlite) and names the mistake', async () => {
    const note = await callOf(data).db.insert('notes', { body: 'original' });
    const ctx = callOf(data);
    const started = performance.now();
    const error = await ctx.db
      .transaction(async (tx) => {
        await tx.patch('notes', note.id as string, { body: 'outer' });
        // Wrong: ctx.db instead of tx. PGlite's lock (PostgreSQL's row lock) makes it wait for tx.
        await ctx.db.patch('notes', note.id as string, { body: 'inner' });
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TransactionTimeoutError);
    expect((error as Error).message).toMatch(
      /inside ctx\.db\.transaction\(async \(tx\) => \.\.\.\) use tx, not ctx\.db/,
    );
    expect(since(started)).toBeLessThan(BOUNDED_MS);
    // Neither the transaction nor the call waiting inside it committed, not even later.
    await sleep(500);
    expect(await bodies()).toEqual(['original']);
  }, 20_000);

  it('ends a transaction whose single statement outlives the budget, without committing it', async () => {
    const notes = model.tables.get('notes')!.sql;
    const started = performance.now();
    const error = await data.client
      .transaction(model.role, async (q) => {
        await q(`INSERT INTO ${notes} ("body") VALUES ('slow')`);
        await q('SELECT pg_sleep(1.5)');
        return 'committed';
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TransactionTimeoutError);
    // PostgreSQL cancels the statement (statement_timeout); PGlite cannot interrupt it, but refuses
    // to commit what finished over budget.
    if (engine === 'postgres') expect(since(started)).toBeLessThan(1400);
    expect(await bodies()).toEqual([]);
  }, 20_000);

  it('commits a transaction that finishes within its budget, and refuses its query once it has ended', async () => {
    let leaked: ((text: string) => Promise<unknown>) | null = null;
    await data.client.transaction(model.role, async (q) => {
      leaked = q;
      await q(`INSERT INTO ${model.tables.get('notes')!.sql} ("body") VALUES ('kept')`);
    });
    expect(await bodies()).toEqual(['kept']);
    await expect(leaked!(`INSERT INTO ${model.tables.get('notes')!.sql} ("body") VALUES ('leaked')`)).rejects.toThrow(
      /already ended/,
    );
    expect(await bodies()).toEqual(['kept']);
  });
});

describe('feature.json "db.transactionTimeoutMs"', () => {
  const parse = (db: unknown, warn?: (m: string) => void) =>
    parseManifest(JSON.stringify({ id: 'feature-x', db }), 'feature.json', { warn });

  it('takes a whole number of milliseconds and warns about unknown fields', () => {
    const warnings: string[] = [];
    expect(parse({ transactionTimeoutMs: 250, pool: 3 }, (m) => warnings.push(m)).db).toEqual({
      transactionTimeoutMs: 250,
    });
    expect(warnings).toEqual(['feature.json: unknown field "db.pool" is ignored']);
    expect(parse({}).db).toEqual({});
  });

  it('refuses anything else with the field and the fix', () => {
    for (const bad of [0, -1, 1.5, '1000', 60_001, null]) {
      expect(() => parse({ transactionTimeoutMs: bad })).toThrow(
        `feature.json: "db.transactionTimeoutMs" must be a whole number of milliseconds from 1 to 60000 (got ${JSON.stringify(bad)})`,
      );
    }
    expect(() => parse(1000)).toThrow('feature.json: "db" must be an object like {"transactionTimeoutMs": 1000}');
  });
});

describe('TransactionBudget', () => {
  const block = (ms: number) => {
    const end = performance.now() + ms;
    while (performance.now() < end);
  };
  const query = async () => [];

  it("reports PostgreSQL's statement timeout as the budget's, even when it answers before the timer runs", async () => {
    const budget = new TransactionBudget(50);
    budget.start();
    const canceled = Object.assign(new Error('canceling statement due to statement timeout'), { code: '57014' });
    const outcome = budget.settle(
      budget.run(async () => {
        block(80); // the loop is busy: the budget's timer has not run when the statement fails
        throw canceled;
      }, query),
    );
    await expect(outcome).rejects.toBeInstanceOf(TransactionTimeoutError);
  });

  it('keeps a late failure of any other kind as it is', async () => {
    const budget = new TransactionBudget(50);
    budget.start();
    const own = new Error('CPU time limit reached');
    const outcome = budget.settle(
      budget.run(async () => {
        block(80);
        throw own;
      }, query),
    );
    await expect(outcome).rejects.toBe(own);
  });
});
