import type pg from 'pg';
import { pgModule } from '../common/load-on-use.js';
import { retryAfterSec, TOKEN_EPSILON, type RateDecision, type RateLimiter } from './limiter.js';

export interface PostgresRateLimiterOptions {
  /** Connections of the pool made from a connection string (default 4). */
  max?: number;
  /** How often buckets that refilled completely are deleted, in ms (default 60000). */
  pruneIntervalMs?: number;
}

/** Schema and table shared by every host on the database; feature schemas are `ext_*`. */
export const RATE_LIMIT_TABLE = 'favn.rate_limits';

// `granted` records whether the last take was allowed: RETURNING sees only the new row.
// `expires_at` is when the bucket is full again; from then on the row means nothing.
const CREATE_SQL = `CREATE SCHEMA IF NOT EXISTS favn;
CREATE TABLE IF NOT EXISTS ${RATE_LIMIT_TABLE} (
  key text PRIMARY KEY,
  tokens double precision NOT NULL,
  updated_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL,
  granted boolean NOT NULL
)`;

// Two hosts starting at once would both try to create the table; the lock makes one wait.
const SETUP_SQL = `SELECT pg_advisory_xact_lock(hashtext('${RATE_LIMIT_TABLE}')); ${CREATE_SQL}`;

// $1 key, $2 limit, $3 tokens per second, $4 now in ms since the epoch (null: the server's clock,
// which all hosts share). A new key starts with a full bucket minus this call. An existing one
// is refilled for the time since its last update, capped at the limit, then gives up one token
// if it has one. The row lock of ON CONFLICT DO UPDATE serializes concurrent takes of one key.
const TAKE_SQL = `INSERT INTO ${RATE_LIMIT_TABLE} AS r (key, tokens, updated_at, expires_at, granted)
SELECT $1, $2::float8 - 1, t.at, t.at + make_interval(secs => 1 / $3::float8), true
FROM (SELECT COALESCE(to_timestamp($4::float8 / 1000), clock_timestamp()) AS at) t
ON CONFLICT (key) DO UPDATE SET (tokens, updated_at, expires_at, granted) = (
  SELECT GREATEST(0, b.tokens - g.take), b.at, b.at + make_interval(secs => ($2::float8 - GREATEST(0, b.tokens - g.take)) / $3::float8), g.take = 1
  FROM (
    SELECT LEAST($2::float8, r.tokens + GREATEST(0, EXTRACT(EPOCH FROM excluded.updated_at - r.updated_at)::float8) * $3::float8) AS tokens,
      GREATEST(r.updated_at, excluded.updated_at) AS at
  ) b
  CROSS JOIN LATERAL (SELECT CASE WHEN b.tokens >= ${1 - TOKEN_EPSILON} THEN 1 ELSE 0 END AS take) g
)
RETURNING tokens, granted`;

const PRUNE_SQL = `DELETE FROM ${RATE_LIMIT_TABLE} WHERE expires_at <= COALESCE(to_timestamp($1::float8 / 1000), clock_timestamp())`;

/**
 * The token bucket of `MemoryRateLimiter` (the same decisions for the same calls), kept in
 * PostgreSQL so that several hosts on one database share each budget. One statement per `take`
 * (an upsert that refills, takes and returns the decision atomically); the table is created on
 * first use. Without a `now`, time is the database server's clock, so hosts whose clocks differ
 * still agree. Buckets that refilled completely are deleted now and then, so the table holds
 * only recently active keys.
 *
 * Given a connection string it opens (and on `close` ends) its own pool; given a `pg.Pool`, the
 * caller keeps owning it.
 *
 * @example
 * const limiter = new PostgresRateLimiter(process.env.DATABASE_URL)
 * const { allowed } = await limiter.take('feature-x:query:tenant-1', 100, 60_000)
 */
export class PostgresRateLimiter implements RateLimiter {
  #pool: pg.Pool;
  #ownsPool: boolean;
  #ready: Promise<void> | null = null;
  #pruneIntervalMs: number;
  #nextPrune: number;
  #pruning: Promise<void> | null = null;

  constructor(pool: pg.Pool | string, options: PostgresRateLimiterOptions = {}) {
    this.#ownsPool = typeof pool === 'string';
    if (typeof pool === 'string') {
      this.#pool = new (pgModule().Pool)({ connectionString: pool, max: options.max ?? 4 });
      // A dropped idle connection is replaced on the next query, which reports any lasting fault.
      this.#pool.on('error', () => {});
    } else {
      this.#pool = pool;
    }
    this.#pruneIntervalMs = options.pruneIntervalMs ?? 60_000;
    this.#nextPrune = Date.now() + this.#pruneIntervalMs;
  }

  async take(key: string, limit: number, windowMs: number, now?: number): Promise<RateDecision> {
    await (this.#ready ??= this.#setUp());
    const perSec = (limit * 1000) / windowMs;
    const { rows } = await this.#pool.query<{ tokens: number; granted: boolean }>({
      name: 'favn-rate-limit-take',
      text: TAKE_SQL,
      values: [key, limit, perSec, now ?? null],
    });
    this.#maybePrune();
    const row = rows[0];
    if (!row) throw new Error(`The rate limit upsert returned no row for ${JSON.stringify(key)}: this is a bug`);
    if (row.granted) return { allowed: true, retryAfterSec: 0, remaining: Math.floor(row.tokens + TOKEN_EPSILON) };
    return { allowed: false, retryAfterSec: retryAfterSec(row.tokens, perSec), remaining: 0 };
  }

  /** Deletes the buckets that are full at `now` (default: the server's clock); returns how many. */
  async prune(now?: number): Promise<number> {
    await (this.#ready ??= this.#setUp());
    const { rowCount } = await this.#pool.query(PRUNE_SQL, [now ?? null]);
    return rowCount ?? 0;
  }

  async close(): Promise<void> {
    await this.#pruning;
    if (this.#ownsPool) await this.#pool.end();
  }

  /** Creates the table unless it exists (then no DDL runs, so no CREATE privilege is needed). */
  async #setUp(): Promise<void> {
    try {
      const { rows } = await this.#pool.query<{ found: boolean }>(
        `SELECT to_regclass('${RATE_LIMIT_TABLE}') IS NOT NULL AS found`,
      );
      // Without parameters this is one simple-protocol message: one implicit transaction.
      if (!rows[0]?.found) await this.#pool.query(SETUP_SQL);
    } catch (error) {
      this.#ready = null; // try again on the next call
      throw error;
    }
  }

  /** Starts a prune in the background at most once per interval; a failure waits for the next. */
  #maybePrune(): void {
    const now = Date.now();
    if (this.#pruning || now < this.#nextPrune) return;
    this.#nextPrune = now + this.#pruneIntervalMs;
    this.#pruning = this.prune()
      .then(
        () => {},
        () => {},
      )
      .finally(() => (this.#pruning = null));
  }
}
