import { describe, expect, it } from 'vitest';
import { deleteRow, insertRow, patchRow, queryRows } from '../../runtime/declarative.js';
import { action, mutation, query } from '../../runtime/handlers.js';
import { ErrorText, REQUEST_ID_HEADER } from '../../runtime/protocol.js';
import { RequestError } from '../../runtime/request-error.js';
import { createHost } from '../host/host.js';
import { functionKindOf } from '../../runtime/kinds.js';
import type { RateDecision, RateLimiter } from './limiter.js';
import { DEFAULT_RATE_LIMITS, parseRateLimits } from './limits.js';
import { MemoryRateLimiter } from './memory-limiter.js';
import { openRateLimiter } from './open-rate-limiter.js';
import { PostgresRateLimiter } from './postgres-limiter.js';
import { checkRateLimit, rateLimitKey } from './rate-limit.js';

const limits = parseRateLimits({ action: { limit: 2, windowSec: 10 } });

function thrown(fn: () => unknown): RequestError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(RequestError);
    return error as RequestError;
  }
  throw new Error('nothing thrown');
}

describe('checkRateLimit', () => {
  it('passes synchronously within the limit and throws 429 with Retry-After past it', () => {
    const limiter = new MemoryRateLimiter();
    const check = { featureId: 'feature-x', tenantId: 'acme', kind: 'action' as const, limits };
    expect(checkRateLimit(limiter, check, 0)).toBeUndefined();
    expect(checkRateLimit(limiter, check, 0)).toBeUndefined();
    const error = thrown(() => checkRateLimit(limiter, check, 0));
    expect(error.status).toBe(429);
    expect(error.message).toBe(
      `${ErrorText.rateLimited}: at most 2 action() calls per 10 s for this installation; retry in 5 s`,
    );
    expect(error.headers).toEqual({ 'Retry-After': '5' });
  });

  it('gives each installation and each kind its own budget', () => {
    const limiter = new MemoryRateLimiter();
    const take = (featureId: string, tenantId: string | null, kind: 'action' | 'query') => () =>
      checkRateLimit(limiter, { featureId, tenantId, kind, limits }, 0);
    take('feature-x', 'acme', 'action')();
    take('feature-x', 'acme', 'action')();
    expect(thrown(take('feature-x', 'acme', 'action')).status).toBe(429);
    expect(take('feature-x', 'globex', 'action')).not.toThrow();
    expect(take('feature-x', null, 'action')).not.toThrow();
    expect(take('feature-y', 'acme', 'action')).not.toThrow();
    expect(take('feature-x', 'acme', 'query')).not.toThrow();
  });

  it('returns a promise when the limiter answers asynchronously', async () => {
    const refusing: RateLimiter = {
      take: async (): Promise<RateDecision> => ({ allowed: false, retryAfterSec: 42, remaining: 0 }),
      close: async () => {},
    };
    const pending = checkRateLimit(refusing, {
      featureId: 'feature-x',
      tenantId: null,
      kind: 'plain',
      limits: DEFAULT_RATE_LIMITS,
    });
    expect(pending).toBeInstanceOf(Promise);
    await expect(pending).rejects.toMatchObject({
      status: 429,
      message: expect.stringMatching(/^Rate limit exceeded: at most 100 plain function calls per 60 s/),
    });
  });

  it("becomes the contract's 429 response with Retry-After through the host's error handler", async () => {
    const host = createHost([]);
    const limiter = new MemoryRateLimiter();
    host.app.post('/limited', (c) => {
      checkRateLimit(limiter, { featureId: 'feature-x', tenantId: 'acme', kind: 'action', limits }, 0);
      return c.json(null);
    });
    expect((await host.app.request('/limited', { method: 'POST' })).status).toBe(200);
    expect((await host.app.request('/limited', { method: 'POST' })).status).toBe(200);
    const res = await host.app.request('/limited', { method: 'POST' });
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('5');
    const body = (await res.json()) as { error: string; requestId: string };
    expect(body.error).toMatch(/^Rate limit exceeded: /);
    expect(body.requestId).toBe(res.headers.get(REQUEST_ID_HEADER));
  });
});

describe('rateLimitKey', () => {
  it('cannot confuse a tenant with another installation', () => {
    expect(rateLimitKey('feature-x', 'acme', 'query')).toBe('feature-x:query:acme');
    expect(rateLimitKey('feature-x', null, 'query')).toBe('feature-x:query');
    expect(rateLimitKey('feature-x', '', 'query')).not.toBe(rateLimitKey('feature-x', null, 'query'));
    expect(rateLimitKey('feature-x', 'a:query', 'plain')).not.toBe(rateLimitKey('feature-x', 'a', 'query'));
  });
});

describe('functionKindOf', () => {
  it('reads the kind of declarative and handler exports, and calls anything else plain', () => {
    expect(functionKindOf(queryRows('rules'))).toBe('queryRows');
    expect(functionKindOf(insertRow('rules'))).toBe('insertRow');
    expect(functionKindOf(patchRow('rules'))).toBe('patchRow');
    expect(functionKindOf(deleteRow('rules'))).toBe('deleteRow');
    expect(functionKindOf(query({ handler: () => 1 }))).toBe('query');
    expect(functionKindOf(mutation({ handler: () => 1 }))).toBe('mutation');
    expect(functionKindOf(action({ handler: () => 1 }))).toBe('action');
    expect(functionKindOf(async () => 1)).toBe('plain');
    expect(functionKindOf(Object.assign(() => 1, { [Symbol.for('favn.serverFunction')]: 'plain' }))).toBe('plain');
    expect(functionKindOf(Object.assign(() => 1, { [Symbol.for('favn.serverFunction')]: 'admin' }))).toBe('plain');
    expect(functionKindOf(null)).toBe('plain');
  });
});

describe('openRateLimiter', () => {
  it('keeps counters in memory without DATABASE_URL and in PostgreSQL with it', async () => {
    expect(openRateLimiter({})).toBeInstanceOf(MemoryRateLimiter);
    const shared = openRateLimiter({ DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none' });
    expect(shared).toBeInstanceOf(PostgresRateLimiter);
    await shared.close(); // connects lazily, so nothing was opened
  });
});
