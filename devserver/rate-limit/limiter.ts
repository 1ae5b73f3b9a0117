/** The outcome of one `take`. */
export interface RateDecision {
  /** True when the call may run; it has used up one unit of the budget. */
  allowed: boolean;
  /** Whole seconds until a call would be allowed again (0 when allowed): the `Retry-After` value. */
  retryAfterSec: number;
  /** Calls still allowed right now after this one (0 when refused). */
  remaining: number;
}

/**
 * Counts calls per key against `limit` calls per `windowMs`. Implementations share one
 * semantics (a token bucket, see `MemoryRateLimiter`), so a host can swap one for another.
 * The in-memory limiter answers synchronously: it runs on every call.
 */
export interface RateLimiter {
  /**
   * Takes one call from the budget of `key`. `now` (ms since the epoch) is for tests; by default
   * the limiter's own clock is used.
   */
  take(key: string, limit: number, windowMs: number, now?: number): RateDecision | Promise<RateDecision>;
  /** Frees what the limiter holds (its connections). */
  close(): Promise<void>;
}

/** Refill arithmetic in floating point may land a hair below a whole token. */
export const TOKEN_EPSILON = 1e-9;

/**
 * Whole seconds until a bucket holding `tokens` has refilled to one token (as the limiters count
 * it) at `perSec` tokens per second; at least 1.
 *
 * @example
 * retryAfterSec(0.25, 0.5) // 2: 0.75 tokens at half a token per second take 1.5 s
 */
export function retryAfterSec(tokens: number, perSec: number): number {
  return Math.max(1, Math.ceil(Math.max(0, 1 - TOKEN_EPSILON - tokens) / perSec));
}
