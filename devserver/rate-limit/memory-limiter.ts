import { retryAfterSec, TOKEN_EPSILON, type RateDecision, type RateLimiter } from './limiter.js';

export interface MemoryRateLimiterOptions {
  /** How often idle keys are dropped, in ms (default 60000). */
  sweepIntervalMs?: number;
  /** Most keys kept at once (default 100000); past it, idle keys go first, then the oldest. */
  maxKeys?: number;
}

interface Bucket {
  tokens: number;
  /** When `tokens` was last brought up to date (ms). */
  updatedAt: number;
  /** From this moment on the bucket is full again, so forgetting it changes nothing (ms). */
  fullAt: number;
}

/**
 * Rate limiting in this process, as a **token bucket**: each key has a bucket of `limit` tokens
 * that refills continuously at `limit / windowMs`, and each call takes one token. A key that was
 * idle can therefore burst up to `limit` calls at once, after which calls are allowed at the
 * steady rate (one every `windowMs / limit`). Over a long run that is `limit` calls per window;
 * any single span of `windowMs` allows at most `limit` plus what refills during it (so under
 * 2 × `limit`). Refused calls take nothing, so a retry after `retryAfterSec` succeeds unless
 * other calls took the refilled token first.
 *
 * A bucket that has refilled completely is the same as no bucket, so it is dropped on the next
 * sweep: memory holds only keys active within their last window.
 *
 * `take` answers synchronously and returns the limiter's own result object, overwritten by the
 * next `take`: read it before calling again. It runs on every call, so it allocates nothing for
 * a known key.
 *
 * @example
 * const limiter = new MemoryRateLimiter()
 * const { allowed, retryAfterSec } = limiter.take('feature-x:query:tenant-1', 100, 60_000)
 */
export class MemoryRateLimiter implements RateLimiter {
  #buckets = new Map<string, Bucket>();
  #result: RateDecision = { allowed: false, retryAfterSec: 0, remaining: 0 };
  #sweepIntervalMs: number;
  #maxKeys: number;
  #nextSweep = 0;

  constructor(options: MemoryRateLimiterOptions = {}) {
    this.#sweepIntervalMs = options.sweepIntervalMs ?? 60_000;
    this.#maxKeys = options.maxKeys ?? 100_000;
  }

  /** Keys currently held. */
  get size(): number {
    return this.#buckets.size;
  }

  take(key: string, limit: number, windowMs: number, now: number = Date.now()): RateDecision {
    if (now >= this.#nextSweep) this.sweep(now);
    const perMs = limit / windowMs;
    let bucket = this.#buckets.get(key);
    if (!bucket) {
      if (this.#buckets.size >= this.#maxKeys) this.#makeRoom(now);
      bucket = { tokens: limit, updatedAt: now, fullAt: now };
      this.#buckets.set(key, bucket);
    } else if (now > bucket.updatedAt) {
      bucket.tokens = Math.min(limit, bucket.tokens + (now - bucket.updatedAt) * perMs);
      bucket.updatedAt = now;
    } else if (bucket.tokens > limit) {
      // The limit was lowered (a feature reloaded with a new manifest).
      bucket.tokens = limit;
    }
    const result = this.#result;
    if (bucket.tokens >= 1 - TOKEN_EPSILON) {
      bucket.tokens = Math.max(0, bucket.tokens - 1);
      result.allowed = true;
      result.retryAfterSec = 0;
      result.remaining = Math.floor(bucket.tokens + TOKEN_EPSILON);
    } else {
      result.allowed = false;
      result.retryAfterSec = retryAfterSec(bucket.tokens, perMs * 1000);
      result.remaining = 0;
    }
    bucket.fullAt = bucket.updatedAt + (limit - bucket.tokens) / perMs;
    return result;
  }

  /** Drops every key whose bucket is full again at `now`; `take` calls it once per interval. */
  sweep(now: number = Date.now()): void {
    this.#nextSweep = now + this.#sweepIntervalMs;
    for (const [key, bucket] of this.#buckets) if (bucket.fullAt <= now) this.#buckets.delete(key);
  }

  async close(): Promise<void> {
    this.#buckets.clear();
  }

  /**
   * At `maxKeys`: drop the idle keys, and if all are active, the oldest ones (Map order is
   * insertion order). A key dropped while active starts over with a full bucket; the cap only
   * bites when more keys are active at once than it allows.
   */
  #makeRoom(now: number): void {
    this.sweep(now);
    for (const key of this.#buckets.keys()) {
      if (this.#buckets.size < this.#maxKeys) break;
      this.#buckets.delete(key);
    }
  }
}
