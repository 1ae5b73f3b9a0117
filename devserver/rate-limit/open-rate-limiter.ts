import { MemoryRateLimiter } from './memory-limiter.js';
import type { RateLimiter } from './limiter.js';
import { PostgresRateLimiter } from './postgres-limiter.js';

/**
 * The limiter a host uses: in PostgreSQL when `DATABASE_URL` is set, so that several hosts on
 * that database share each budget; otherwise in this process (PGlite is one process's database
 * anyway, so nothing else could share it).
 *
 * @example
 * const limiter = openRateLimiter({ DATABASE_URL: process.env.DATABASE_URL })
 */
export function openRateLimiter(env: Readonly<Record<string, string | undefined>> = process.env): RateLimiter {
  const url = env.DATABASE_URL;
  return url ? new PostgresRateLimiter(url) : new MemoryRateLimiter();
}
