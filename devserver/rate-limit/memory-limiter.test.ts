import { describe, expect, it } from 'vitest';
import { MemoryRateLimiter } from './memory-limiter.js';

const MINUTE = 60_000;

/** Takes `n` calls at `now` and counts the allowed ones. */
function takeMany(
  limiter: MemoryRateLimiter,
  key: string,
  n: number,
  limit: number,
  windowMs: number,
  now: number,
): number {
  let allowed = 0;
  for (let i = 0; i < n; i++) if (limiter.take(key, limit, windowMs, now).allowed) allowed++;
  return allowed;
}

describe('MemoryRateLimiter', () => {
  it('allows a full burst of `limit` calls, then refuses', () => {
    const limiter = new MemoryRateLimiter();
    const first = limiter.take('k', 5, MINUTE, 0);
    expect({ ...first }).toEqual({ allowed: true, retryAfterSec: 0, remaining: 4 });
    expect(takeMany(limiter, 'k', 10, 5, MINUTE, 0)).toBe(4);
    expect({ ...limiter.take('k', 5, MINUTE, 0) }).toEqual({ allowed: false, retryAfterSec: 12, remaining: 0 });
  });

  it('refills continuously at limit per window', () => {
    const limiter = new MemoryRateLimiter();
    expect(takeMany(limiter, 'k', 50, 50, MINUTE, 0)).toBe(50);
    // One token every 1.2 s.
    expect(limiter.take('k', 50, MINUTE, 1_199).allowed).toBe(false);
    expect(limiter.take('k', 50, MINUTE, 1_200).allowed).toBe(true);
    expect(limiter.take('k', 50, MINUTE, 1_200).allowed).toBe(false);
    // Half a window brings back half the budget.
    expect(takeMany(limiter, 'k', 50, 50, MINUTE, 1_200 + 30_000)).toBe(25);
    // Idle for longer than a window: a full burst again, never more.
    expect(takeMany(limiter, 'k', 200, 50, MINUTE, 10 * MINUTE)).toBe(50);
  });

  it('allows the steady rate indefinitely after a burst', () => {
    const limiter = new MemoryRateLimiter();
    expect(takeMany(limiter, 'k', 20, 20, MINUTE, 0)).toBe(20);
    let allowed = 0;
    for (let t = 3_000; t <= 10 * MINUTE; t += 3_000) allowed += takeMany(limiter, 'k', 3, 20, MINUTE, t);
    expect(allowed).toBe(200); // one per 3 s over 10 minutes
  });

  it('says how long until the next token in whole seconds, rounded up', () => {
    const limiter = new MemoryRateLimiter();
    takeMany(limiter, 'k', 20, 20, MINUTE, 0); // empty; a token every 3 s
    expect(limiter.take('k', 20, MINUTE, 0).retryAfterSec).toBe(3);
    expect(limiter.take('k', 20, MINUTE, 1_000).retryAfterSec).toBe(2);
    expect(limiter.take('k', 20, MINUTE, 2_001).retryAfterSec).toBe(1);
    expect(limiter.take('k', 20, MINUTE, 2_999).retryAfterSec).toBe(1);
    expect(limiter.take('k', 20, MINUTE, 3_000).allowed).toBe(true);
    // Retrying after the advertised delay succeeds.
    const refused = limiter.take('k', 5, 10_000, 3_000);
    expect(refused.allowed).toBe(false);
    expect(limiter.take('k', 5, 10_000, 3_000 + refused.retryAfterSec * 1000).allowed).toBe(true);
  });

  it('keeps keys apart', () => {
    const limiter = new MemoryRateLimiter();
    expect(takeMany(limiter, 'feature-a:query:t1', 5, 3, MINUTE, 0)).toBe(3);
    expect(takeMany(limiter, 'feature-a:query:t2', 5, 3, MINUTE, 0)).toBe(3);
    expect(takeMany(limiter, 'feature-b:query:t1', 5, 3, MINUTE, 0)).toBe(3);
    expect(limiter.take('feature-a:query:t1', 3, MINUTE, 0).allowed).toBe(false);
  });

  it('applies a lowered limit at once', () => {
    const limiter = new MemoryRateLimiter();
    limiter.take('k', 100, MINUTE, 0);
    expect(takeMany(limiter, 'k', 10, 2, MINUTE, 0)).toBe(2);
  });

  it('does not refill when the clock goes backwards', () => {
    const limiter = new MemoryRateLimiter();
    takeMany(limiter, 'k', 2, 2, MINUTE, 10_000);
    expect(limiter.take('k', 2, MINUTE, 5_000).allowed).toBe(false);
    expect(limiter.take('k', 2, MINUTE, 40_000).allowed).toBe(true); // 30 s after the last real update
  });

  it('forgets keys once their bucket is full again', () => {
    const limiter = new MemoryRateLimiter({ sweepIntervalMs: 1_000 });
    for (let i = 0; i < 1_000; i++) limiter.take(`idle-${i}`, 10, 20_000, 0);
    takeMany(limiter, 'busy', 10, 10, 60_000, 0);
    expect(limiter.size).toBe(1_001);
    // The idle keys get their one token back in 2 s; the busy key needs a minute for ten.
    limiter.take('busy', 10, 60_000, 1_000);
    expect(limiter.size).toBe(1_001);
    limiter.take('busy', 10, 60_000, 2_000);
    expect(limiter.size).toBe(1);
    // A forgotten key starts with a full bucket, as it would have had anyway.
    expect(takeMany(limiter, 'idle-0', 20, 10, 20_000, 2_000)).toBe(10);
  });

  it('holds at most maxKeys, dropping idle keys first', () => {
    const limiter = new MemoryRateLimiter({ maxKeys: 100, sweepIntervalMs: MINUTE * 60 });
    takeMany(limiter, 'busy', 5, 5, MINUTE, 0);
    for (let i = 0; i < 99; i++) limiter.take(`one-off-${i}`, 100, 1_000, 0);
    expect(limiter.size).toBe(100);
    limiter.take('newcomer', 5, MINUTE, 5_000); // the one-off keys are full again by now
    expect(limiter.size).toBe(2);
    expect(limiter.take('busy', 5, MINUTE, 5_000).allowed).toBe(false); // its state survived
    for (let i = 0; i < 500; i++) limiter.take(`active-${i}`, 5, MINUTE, 5_000);
    expect(limiter.size).toBe(100);
  });
});
