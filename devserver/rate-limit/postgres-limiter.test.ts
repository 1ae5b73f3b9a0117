import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres, type TestPostgres } from '../../fixtures/postgres.js';
import { MemoryRateLimiter } from './memory-limiter.js';
import { PostgresRateLimiter } from './postgres-limiter.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

let server: TestPostgres;
const pools: pg.Pool[] = [];
const limiters: PostgresRateLimiter[] = [];

function pool(url: string, max = 10): pg.Pool {
  const p = new pg.Pool({ connectionString: url, max });
  pools.push(p);
  return p;
}

function limiter(source: pg.Pool | string): PostgresRateLimiter {
  const l = new PostgresRateLimiter(source);
  limiters.push(l);
  return l;
}

async function countAllowed(
  l: PostgresRateLimiter,
  key: string,
  n: number,
  limit: number,
  windowMs: number,
  now?: number,
): Promise<number> {
  let allowed = 0;
  for (let i = 0; i < n; i++) if ((await l.take(key, limit, windowMs, now)).allowed) allowed++;
  return allowed;
}

beforeAll(async () => {
  server = await startPostgres();
});
afterAll(async () => {
  await Promise.all(limiters.map((l) => l.close().catch(() => {})));
  await Promise.all(pools.map(endPool));
  await server?.stop();
});

/** `end()` resolves before the connections have closed; wait for them, so stopping the server cannot fail them. */
function endPool(p: pg.Pool): Promise<void> {
  if (p.ended) return Promise.resolve();
  let open = p.totalCount;
  return new Promise((resolve) => {
    p.on('remove', () => --open <= 0 && resolve());
    p.end().then(
      () => open <= 0 && resolve(),
      () => resolve(),
    );
  });
}

describe('PostgresRateLimiter', () => {
  let url: string;
  let shared: PostgresRateLimiter;
  beforeAll(async () => {
    url = await server.createDatabase();
    shared = limiter(pool(url));
  });

  it('allows a burst, refills continuously and says when to retry', async () => {
    expect(await shared.take('burst', 5, MINUTE, 0)).toEqual({ allowed: true, retryAfterSec: 0, remaining: 4 });
    expect(await countAllowed(shared, 'burst', 10, 5, MINUTE, 0)).toBe(4);
    expect(await shared.take('burst', 5, MINUTE, 0)).toEqual({ allowed: false, retryAfterSec: 12, remaining: 0 });
    expect((await shared.take('burst', 5, MINUTE, 11_999)).allowed).toBe(false);
    expect(await shared.take('burst', 5, MINUTE, 12_000)).toEqual({ allowed: true, retryAfterSec: 0, remaining: 0 });
    expect(await countAllowed(shared, 'burst', 10, 5, MINUTE, 12_000 + 10 * MINUTE)).toBe(5);
  });

  it('makes the same decisions as the memory limiter', async () => {
    const memory = new MemoryRateLimiter();
    // A deterministic mix of keys, limits and times, in the same order for both.
    let seed = 42;
    const random = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
    let now = 1_700_000_000_000;
    let refused = 0;
    for (let i = 0; i < 300; i++) {
      now += Math.floor(random() * 400);
      const key = `same-${Math.floor(random() * 2)}`;
      const [limit, windowMs] = random() < 0.5 ? [3, 2_000] : [10, 10_000];
      const expected = { ...memory.take(key, limit, windowMs, now) };
      expect({ i, ...(await shared.take(key, limit, windowMs, now)) }).toEqual({ i, ...expected });
      if (!expected.allowed) refused++;
    }
    expect(refused).toBeGreaterThan(30);
    expect(refused).toBeLessThan(270);
  });

  it('keeps keys apart', async () => {
    expect(await countAllowed(shared, 'feature-a:query:t1', 5, 3, MINUTE)).toBe(3);
    expect(await countAllowed(shared, 'feature-a:query:t2', 5, 3, MINUTE)).toBe(3);
    expect(await countAllowed(shared, 'feature-a:query', 5, 3, MINUTE)).toBe(3);
  });

  it("uses the server's clock without a `now`", async () => {
    expect(await countAllowed(shared, 'clock', 5, 2, HOUR)).toBe(2);
    const refused = await shared.take('clock', 2, HOUR);
    expect(refused.allowed).toBe(false);
    // A token every 30 minutes, a few ms of which have passed.
    expect(refused.retryAfterSec).toBeGreaterThan(1790);
    expect(refused.retryAfterSec).toBeLessThanOrEqual(1800);
  });

  it('shares one budget between two pools under concurrency', async () => {
    const a = limiter(pool(url));
    const b = limiter(pool(url));
    const race = async (key: string, now?: number) => {
      const takes = [...Array(100)].flatMap(() => [a.take(key, 50, MINUTE, now), b.take(key, 50, MINUTE, now)]);
      const decisions = await Promise.all(takes);
      return decisions.filter((d) => d.allowed).length;
    };
    expect(await race('concurrent-fixed', 1_000_000)).toBe(50);
    // With the server's clock the refill during the race is far below one token (50 per hour).
    const takes = [...Array(100)].flatMap(() => [
      a.take('concurrent-clock', 50, HOUR),
      b.take('concurrent-clock', 50, HOUR),
    ]);
    expect((await Promise.all(takes)).filter((d) => d.allowed).length).toBe(50);
  });

  it('deletes buckets once they are full again, which changes no decision', async () => {
    await countAllowed(shared, 'prune-idle', 1, 10, 10_000, 5_000); // full again at 6 s
    await countAllowed(shared, 'prune-busy', 10, 10, 10_000, 5_000); // full again at 15 s
    const keys = async () =>
      (
        await pools[0]!.query<{ key: string }>("SELECT key FROM favn.rate_limits WHERE key LIKE 'prune-%' ORDER BY key")
      ).rows.map((r) => r.key);
    await shared.prune(5_999);
    expect(await keys()).toEqual(['prune-busy', 'prune-idle']);
    await shared.prune(6_000);
    expect(await keys()).toEqual(['prune-busy']);
    expect(await countAllowed(shared, 'prune-busy', 2, 10, 10_000, 6_000)).toBe(1); // 1 s of refill
    expect(await countAllowed(shared, 'prune-idle', 20, 10, 10_000, 6_000)).toBe(10);
  });
});

describe('PostgresRateLimiter set-up', () => {
  it('creates its table on first use, also when two hosts start at once', async () => {
    // Without a lock around the DDL, such a race fails almost every time.
    for (let round = 0; round < 3; round++) {
      const url = await server.createDatabase();
      const hosts = [...Array(4)].map(() => limiter(pool(url, 2)));
      const first = await Promise.all(hosts.map((h) => h.take('first', 3, MINUTE, 0)));
      expect(first.filter((d) => d.allowed)).toHaveLength(3);
      const { rows } = await pools.at(-1)!.query("SELECT to_regclass('favn.rate_limits')::text AS t");
      expect(rows).toEqual([{ t: 'favn.rate_limits' }]);
    }
  });

  it('opens and ends its own pool from a connection string, and leaves a given pool open', async () => {
    const url = await server.createDatabase();
    const own = new PostgresRateLimiter(url);
    expect((await own.take('k', 1, MINUTE)).allowed).toBe(true);
    await own.close();
    await expect(own.take('k', 1, MINUTE)).rejects.toThrow(/after calling end/);

    const given = pool(url);
    const borrowing = new PostgresRateLimiter(given);
    expect((await borrowing.take('k', 1, MINUTE)).allowed).toBe(false);
    await borrowing.close();
    expect((await given.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
  });

  it('needs no CREATE privilege once the table exists', async () => {
    const url = await server.createDatabase();
    const admin = limiter(pool(url));
    await admin.take('k', 2, MINUTE, 0);
    const role = `favn_rl_${randomBytes(4).toString('hex')}`;
    const adminPool = pools.at(-1)!;
    await adminPool.query(`CREATE ROLE ${role} LOGIN`);
    try {
      await adminPool.query(`GRANT USAGE ON SCHEMA favn TO ${role}`);
      await adminPool.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON favn.rate_limits TO ${role}`);
      const asRole = new URL(url);
      asRole.username = role;
      // The DDL the limiter would run on an empty database is refused to this role.
      await expect(pool(asRole.toString()).query('CREATE SCHEMA IF NOT EXISTS favn')).rejects.toThrow(
        /permission denied/,
      );
      const host = limiter(asRole.toString());
      expect(await host.take('k', 2, MINUTE, 0)).toMatchObject({ allowed: true, remaining: 0 });
      expect((await host.take('k', 2, MINUTE, 0)).allowed).toBe(false);
      await host.close();
    } finally {
      await adminPool.query(`REASSIGN OWNED BY ${role} TO CURRENT_USER; DROP OWNED BY ${role}; DROP ROLE ${role}`);
    }
  });
});
