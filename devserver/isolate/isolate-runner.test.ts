import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HandlerKind } from '../../runtime/kinds.js';
import { defineSchema, defineTable } from '../../runtime/schema.js';
import type { ServerContext } from '../../runtime/server.js';
import { v } from '../../runtime/validators.js';
import { RawJson } from '../common/raw-json.js';
import { FeatureData } from '../data/feature-data.js';
import { migrate } from '../data/migrate.js';
import { openPglite } from '../data/pglite-client.js';
import type { SqlClient } from '../data/sql-client.js';
import { modelSchema } from '../data/table-model.js';
import { toFailure } from '../host/handle-error.js';
import { bundleHandlers, type HandlerBundle } from './bundle-handlers.js';
import { IsolateRunner } from './isolate-runner.js';
import { DEFAULT_LIMITS, type IsolateLimits } from './limits.js';

const FEATURE = 'feature-runner';
const FIXTURES = fileURLToPath(new URL('./__fixtures__/runner/', import.meta.url));
const model = modelSchema(FEATURE, defineSchema({ notes: defineTable({ body: v.string() }) }));

/** The handlers of `__fixtures__/runner/handlers.server.ts` and their kinds, as the export scan finds them. */
const HANDLERS: Record<string, HandlerKind> = {
  double: 'query',
  nothing: 'query',
  whoAmI: 'query',
  countNotes: 'query',
  addNote: 'mutation',
  addThenConflict: 'mutation',
  bump: 'mutation',
  greet: 'action',
  countFromAction: 'action',
  conflict: 'query',
  fails: 'query',
  spin: 'query',
  hog: 'query',
  neverSettles: 'query',
  actionNeverSettles: 'action',
  work: 'query',
  version: 'query',
  count: 'query',
};

/** Loop rounds that keep a handler busy for a while (tens of ms), far below any CPU budget here. */
const SLOW = 3_000_000;

// Short limits keep the suite fast. Every timing bound below is several times the budget it checks.
const BASE: IsolateLimits = {
  ...DEFAULT_LIMITS,
  memoryLimitMb: 64,
  cpuLimitMs: 2000,
  timeoutMs: 5000,
  actionTimeoutMs: 5000,
  maxIsolates: 2,
};

/** A caller's context; calls of one user share an isolate context, so vary it where it matters. */
function contextOf(
  overrides: { userId?: string | null; tenantId?: string | null; signal?: AbortSignal } = {},
): ServerContext {
  const userId = overrides.userId === undefined ? 'user-1' : overrides.userId;
  return {
    requestId: `req-${Math.random().toString(36).slice(2)}`,
    featureId: FEATURE,
    userRoles: ['editor'],
    claims: userId ? { sub: userId } : null,
    visibility: { featureToggles: [], tenantId: overrides.tenantId ?? null },
    auth: { userId },
    db: {} as ServerContext['db'],
    secrets: {},
    signal: overrides.signal ?? new AbortController().signal,
  };
}

/** What a client sees of a failed call, outside dev (`dev: false`) or in dev. */
async function seen(call: Promise<unknown>, dev = false): Promise<{ status: number; message: string }> {
  const error = await call.then(
    (value) => {
      throw new Error(`the call succeeded with ${JSON.stringify(value)}`);
    },
    (error: unknown) => error,
  );
  const { status, message } = toFailure(error, dev);
  return { status, message };
}

/** Milliseconds `work` took, with its outcome. */
async function timed<T>(work: () => Promise<T>): Promise<{ result: T; ms: number }> {
  const started = performance.now();
  const result = await work();
  return { result, ms: performance.now() - started };
}

describe('IsolateRunner', () => {
  let bundle: HandlerBundle;
  let next: HandlerBundle;
  let client: SqlClient;
  let data: FeatureData;
  const runners: IsolateRunner[] = [];

  /** A runner with `limits` over the defaults of this suite, the fixture bundle loaded. */
  const runnerWith = (limits: Partial<IsolateLimits> = {}) => {
    const runner = new IsolateRunner({
      featureId: FEATURE,
      limits: { ...BASE, ...limits },
      data: () => data,
      secrets: () => ({ GREETING_KEY: 'k-123456' }),
    });
    runner.load(bundle.code, bundle.kinds);
    runners.push(runner);
    return runner;
  };
  const run = (runner: IsolateRunner, name: string, args: unknown[] = [], ctx = contextOf()) =>
    runner.run(HANDLERS[name]!, name, ctx, args);

  beforeAll(async () => {
    const handlers = Object.entries(HANDLERS).map(([name, kind]) => ({ name, kind }));
    bundle = await bundleHandlers(FIXTURES, [{ absolute: path.join(FIXTURES, 'handlers.server.ts'), handlers }]);
    next = await bundleHandlers(FIXTURES, [
      { absolute: path.join(FIXTURES, 'handlers-next.server.ts'), handlers: [{ name: 'version', kind: 'query' }] },
    ]);
    client = await openPglite(null);
    await migrate(client, model);
    data = new FeatureData(client, model);
  });
  afterAll(async () => {
    for (const runner of runners) runner.close();
    await client?.close();
  });

  it('loaded lazily (a built feature), holds no isolate until the first call, then one', async () => {
    const runner = new IsolateRunner({
      featureId: FEATURE,
      limits: BASE,
      data: () => data,
      secrets: () => ({ GREETING_KEY: 'k-123456' }),
    });
    runners.push(runner);
    runner.load(bundle.code, bundle.kinds, { warm: false });
    expect(runner.stats().isolates).toBe(0);
    const warm = runnerWith();
    expect(warm.stats().isolates).toBe(1);
    const [lazy, eager] = await Promise.all([run(runner, 'double', [21]), run(warm, 'double', [21])]);
    expect(lazy.json).toBe(eager.json);
    expect(runner.stats().isolates).toBe(1);
  });

  describe('results', () => {
    let runner: IsolateRunner;
    beforeAll(() => {
      runner = runnerWith();
    });

    it('a query returns its value as JSON text; undefined is null', async () => {
      expect(await run(runner, 'double', [21])).toEqual(new RawJson('42'));
      expect(await run(runner, 'nothing')).toEqual(new RawJson('null'));
    });

    it("a query sees the caller's context", async () => {
      const result = await run(runner, 'whoAmI', [], contextOf({ userId: 'ann', tenantId: 't1' }));
      expect(JSON.parse(result.json)).toEqual({ featureId: FEATURE, userId: 'ann', tenantId: 't1', roles: ['editor'] });
    });

    it('a mutation writes in its transaction; one that throws rolls back and keeps its status', async () => {
      const before = Number((await run(runner, 'countNotes')).json);
      expect(await run(runner, 'addNote', ['first'])).toEqual(new RawJson('{"body":"first","hasId":true}'));
      expect(await seen(run(runner, 'addThenConflict', ['second']))).toEqual({
        status: 409,
        message: 'This note was changed by someone else',
      });
      expect(await run(runner, 'countNotes')).toEqual(new RawJson(String(before + 1)));
    });

    it('an action gets the secrets and runs a query with ctx.runQuery', async () => {
      expect(await run(runner, 'greet', ['ann'])).toEqual(new RawJson('"hello ann, your key has 8 characters"'));
      const count = await run(runner, 'countNotes');
      expect(await run(runner, 'countFromAction')).toEqual(count);
    });
  });

  describe('errors', () => {
    let runner: IsolateRunner;
    beforeAll(() => {
      runner = runnerWith();
    });

    it('arguments that fail the validator are 422, naming the argument', async () => {
      expect(await seen(run(runner, 'double', ['21']))).toEqual({
        status: 422,
        message: expect.stringMatching(/^Invalid arguments: args\[0\]: expected finite number, got /),
      });
      expect(await seen(run(runner, 'double', [1, 2]))).toEqual({
        status: 422,
        message: 'Invalid arguments: expected at most 1 argument, got 2',
      });
    });

    it('httpError(409, ...) keeps its status and message, in dev and outside', async () => {
      for (const dev of [false, true]) {
        expect(await seen(run(runner, 'conflict'), dev)).toEqual({
          status: 409,
          message: 'This note was changed by someone else',
        });
      }
    });

    it('a plain error is 500; its message reaches the client only in dev', async () => {
      expect(await seen(run(runner, 'fails'), false)).toEqual({ status: 500, message: 'Internal error' });
      expect(await seen(run(runner, 'fails'), true)).toEqual({
        status: 500,
        message: 'the database password is hunter2',
      });
    });

    it('the runner keeps serving after errors', async () => {
      expect(await run(runner, 'double', [2])).toEqual(new RawJson('4'));
    });
  });

  describe('limits', () => {
    it('a spinning handler fails with 503 within about its CPU budget; the runner keeps serving', async () => {
      const runner = runnerWith({ cpuLimitMs: 300, timeoutMs: 5000 });
      const { result, ms } = await timed(() => seen(run(runner, 'spin')));
      expect(result).toEqual({ status: 503, message: 'RPC execution timed out: spin used more than 300 ms of CPU' });
      expect(ms).toBeLessThan(5 * 300);
      const after = await Promise.all([
        run(runner, 'double', [1]),
        run(runner, 'double', [2]),
        run(runner, 'double', [3]),
      ]);
      expect(after).toEqual([new RawJson('2'), new RawJson('4'), new RawJson('6')]);
    });

    it('a handler over its memory limit fails with 500; its isolate is replaced and the runner keeps serving', async () => {
      const runner = runnerWith({ memoryLimitMb: 16, cpuLimitMs: 5000, timeoutMs: 10_000 });
      expect(await seen(run(runner, 'hog'), true)).toEqual({
        status: 500,
        message: 'hog ran out of memory (the limit is 16 MB); its isolate was replaced',
      });
      expect(await seen(run(runner, 'hog'), false)).toEqual({ status: 500, message: 'Internal error' });
      expect(await run(runner, 'double', [5])).toEqual(new RawJson('10'));
      expect(runner.stats().isolates).toBeLessThanOrEqual(2);
    });

    it('a query awaiting what never settles ends at its wall-clock deadline with 503', async () => {
      const runner = runnerWith({ timeoutMs: 300, actionTimeoutMs: 800 });
      const { result, ms } = await timed(() => seen(run(runner, 'neverSettles')));
      expect(result).toEqual({
        status: 503,
        message: 'RPC execution timed out: neverSettles did not finish within 300 ms',
      });
      expect(ms).toBeGreaterThanOrEqual(290);
      expect(ms).toBeLessThan(5 * 300);
      expect(await run(runner, 'double', [1])).toEqual(new RawJson('2'));
    });

    it("an action's deadline is actionTimeoutMs", async () => {
      const runner = runnerWith({ timeoutMs: 300, actionTimeoutMs: 800 });
      const { result, ms } = await timed(() => seen(run(runner, 'actionNeverSettles')));
      expect(result).toEqual({
        status: 503,
        message: 'RPC execution timed out: actionNeverSettles did not finish within 800 ms',
      });
      expect(ms).toBeGreaterThanOrEqual(790);
      expect(ms).toBeLessThan(5 * 800);
      expect(await run(runner, 'greet', ['bo'])).toEqual(new RawJson('"hello bo, your key has 8 characters"'));
    });
  });

  describe('the pool', () => {
    it('calls beyond maxIsolates wait for an isolate, and all finish with their own results', async () => {
      const runner = runnerWith({ maxIsolates: 2 });
      const calls = [0, 1, 2, 3, 4, 5].map((id) =>
        run(runner, 'work', [id, SLOW], contextOf({ userId: `user-${id}` })),
      );
      expect(runner.stats()).toMatchObject({ waiting: 4, max: 2 });
      expect(await Promise.all(calls)).toEqual([0, 1, 2, 3, 4, 5].map((id) => new RawJson(String(id))));
      expect(runner.stats()).toMatchObject({ waiting: 0, max: 2 });
      expect(runner.stats().peak).toBeLessThanOrEqual(2);
      expect(runner.stats().isolates).toBeLessThanOrEqual(2);
    });

    it('a waiting caller whose signal aborts leaves the queue; the others finish', async () => {
      const runner = runnerWith({ maxIsolates: 1, timeoutMs: 300 });
      const busy = seen(run(runner, 'neverSettles'));
      const controller = new AbortController();
      const waiting = run(runner, 'double', [1], contextOf({ signal: controller.signal }));
      const third = run(runner, 'double', [3]);
      expect(runner.stats().waiting).toBe(2);
      const reason = new Error('the client went away');
      controller.abort(reason);
      await expect(waiting).rejects.toBe(reason);
      expect(runner.stats().waiting).toBe(1);
      expect((await busy).status).toBe(503);
      expect(await third).toEqual(new RawJson('6'));
    });

    it('stats(): one warm isolate after load, busy while a call runs, idle again after', async () => {
      const runner = runnerWith({ maxIsolates: 3 });
      expect(runner.stats()).toEqual({ isolates: 1, idle: 1, peak: 1, waiting: 0, max: 3 });
      const call = run(runner, 'version', [SLOW]);
      expect(runner.stats()).toMatchObject({ isolates: 1, idle: 0, waiting: 0 });
      expect(await call).toEqual(new RawJson('1'));
      await expect.poll(() => runner.stats().idle, { timeout: 2000 }).toBe(1);
      expect(runner.stats()).toEqual({ isolates: 1, idle: 1, peak: 1, waiting: 0, max: 3 });
    });
  });

  describe('the write path', () => {
    it("reports a mutation's committed writes once, and nothing of one that throws", async () => {
      const runner = runnerWith();
      const changes: string[][] = [];
      const stop = data.onCommit(({ tables }) => changes.push([...tables]));
      try {
        await run(runner, 'addNote', ['reported']);
        await seen(run(runner, 'addThenConflict', ['rolled back']));
        await run(runner, 'countNotes');
      } finally {
        stop();
      }
      expect(changes).toEqual([['notes']]);
    });

    it('a mutation in a feature without tables runs; its ctx.db says why it has none', async () => {
      const runner = new IsolateRunner({ featureId: FEATURE, limits: BASE, data: () => null, secrets: () => ({}) });
      runners.push(runner);
      runner.load(bundle.code, bundle.kinds);
      expect(await run(runner, 'bump', [41])).toEqual(new RawJson('42'));
      const failed = await seen(run(runner, 'addNote', ['no tables']), true);
      expect(failed.status).toBe(500);
      expect(failed.message).toMatch(
        /addNote uses ctx\.db, but feature ".*" has no server\/schema\.ts defining tables/,
      );
    });
  });

  describe('load, configure, close', () => {
    it('load(): calls in flight finish on the old bundle, new calls run the new one', async () => {
      const runner = runnerWith();
      const inFlight = run(runner, 'version', [SLOW]);
      runner.load(next.code, next.kinds);
      expect(await run(runner, 'version', [0])).toEqual(new RawJson('2'));
      expect(await inFlight).toEqual(new RawJson('1'));
      expect(runner.kindOf('version')).toBe('query');
      expect(runner.kindOf('double')).toBeUndefined();
      await expect(run(runner, 'double', [1])).rejects.toThrow(/"double" is not a query handler/);
    });

    it('load() of the same bundle again keeps the isolates and their module state; another one does not', async () => {
      const runner = runnerWith();
      expect([await run(runner, 'count'), await run(runner, 'count')]).toEqual([new RawJson('1'), new RawJson('2')]);
      runner.load(bundle.code, bundle.kinds);
      expect(await run(runner, 'count')).toEqual(new RawJson('3'));
      runner.load(next.code, next.kinds);
      runner.load(bundle.code, bundle.kinds);
      expect(await run(runner, 'count')).toEqual(new RawJson('1'));
    });

    it('load() of a bundle that does not compile throws; the last good one keeps serving', async () => {
      const runner = runnerWith();
      expect(() => runner.load('globalThis.__favn_handlers = {', { version: 'query' })).toThrow(SyntaxError);
      expect(await run(runner, 'version', [0])).toEqual(new RawJson('1'));
      expect(await run(runner, 'double', [4])).toEqual(new RawJson('8'));
    });

    it('configure(): later calls run with the new limits, on the same bundle; calls in flight finish', async () => {
      const runner = runnerWith({ maxIsolates: 2, timeoutMs: 5000 });
      const inFlight = run(runner, 'version', [SLOW]);
      runner.configure({ ...BASE, maxIsolates: 1, timeoutMs: 300 });
      expect(runner.limits).toMatchObject({ maxIsolates: 1, timeoutMs: 300 });
      expect(runner.stats().max).toBe(1);
      expect(await inFlight).toEqual(new RawJson('1'));
      expect(await run(runner, 'double', [7])).toEqual(new RawJson('14'));
      const { result, ms } = await timed(() => seen(run(runner, 'neverSettles')));
      expect(result).toEqual({
        status: 503,
        message: 'RPC execution timed out: neverSettles did not finish within 300 ms',
      });
      expect(ms).toBeLessThan(5 * 300);
    });

    it('close(): a call in flight ends with 503 at once, and the isolates go', async () => {
      const runner = runnerWith({ maxIsolates: 1, timeoutMs: 10_000 });
      const inFlight = seen(run(runner, 'neverSettles'));
      expect(runner.stats().isolates).toBe(1);
      const { result, ms } = await timed(() => (runner.close(), inFlight));
      expect(result).toEqual({ status: 503, message: 'Server functions unavailable: the host is shutting down' });
      expect(ms).toBeLessThan(2000);
      await expect.poll(() => runner.stats().isolates, { timeout: 5000 }).toBe(0);
    });

    it('close(): a call waiting for an isolate ends with 503 as well', async () => {
      const runner = runnerWith({ maxIsolates: 1, timeoutMs: 10_000 });
      const inFlight = seen(run(runner, 'neverSettles'));
      const waiting = seen(run(runner, 'double', [1]));
      expect(runner.stats().waiting).toBe(1);
      runner.close();
      expect((await inFlight).status).toBe(503);
      expect(await waiting).toEqual({
        status: 503,
        message: expect.stringMatching(/^Server functions unavailable\b/),
      });
    });

    it('close(): a call after it is refused with 503', async () => {
      const runner = runnerWith();
      runner.close();
      const after = seen(Promise.resolve().then(() => run(runner, 'double', [1])));
      expect(await after).toEqual({
        status: 503,
        message: expect.stringMatching(/^Server functions unavailable\b/),
      });
    });
  });
});
