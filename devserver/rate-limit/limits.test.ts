import { describe, expect, it } from 'vitest';
import { UsageError } from '../common/usage-error.js';
import { DEFAULT_RATE_LIMITS, parseRateLimits } from './limits.js';

describe('parseRateLimits', () => {
  it('gives the defaults of the spec without overrides', () => {
    expect(parseRateLimits(undefined)).toBe(DEFAULT_RATE_LIMITS);
    const perMinute = Object.fromEntries(
      Object.entries(parseRateLimits({})).map(([kind, l]) => [kind, l.limit * (60_000 / l.windowMs)]),
    );
    expect(perMinute).toEqual({
      queryRows: 100,
      insertRow: 50,
      patchRow: 50,
      deleteRow: 50,
      query: 100,
      mutation: 50,
      action: 20,
      plain: 100,
    });
  });

  it('reads a number as calls per minute and an object with its own window', () => {
    const limits = parseRateLimits({ query: 300, action: { limit: 5, windowSec: 10 }, plain: { limit: 7 } });
    expect(limits.query).toEqual({ limit: 300, windowMs: 60_000 });
    expect(limits.action).toEqual({ limit: 5, windowMs: 10_000 });
    expect(limits.plain).toEqual({ limit: 7, windowMs: 60_000 });
    expect(limits.mutation).toEqual(DEFAULT_RATE_LIMITS.mutation);
  });

  it('names the field and the fix in its usage errors', () => {
    const message = (value: unknown) => {
      try {
        parseRateLimits(value);
      } catch (error) {
        expect(error).toBeInstanceOf(UsageError);
        return (error as Error).message;
      }
      throw new Error('no error');
    };
    expect(message([])).toMatch(/^feature\.json: "rateLimits" must be an object/);
    expect(message({ queries: 10 })).toBe(
      'feature.json: "rateLimits.queries" is not a kind of server function: use one of queryRows, insertRow, patchRow, deleteRow, query, mutation, action, plain',
    );
    expect(message({ query: 0 })).toMatch(
      /"rateLimits\.query" must be a whole number of calls from 1 to 1000000 \(got 0\)/,
    );
    expect(message({ query: 2.5 })).toMatch(/"rateLimits\.query" must be a whole number/);
    expect(message({ query: '100' })).toMatch(
      /"rateLimits\.query" must be calls per minute \(a number\) or .* \(got "100"\)/,
    );
    expect(message({ action: 'fast' })).toMatch(
      /"rateLimits\.action" must be calls per minute \(a number\) or \{"limit": 5, "windowSec": 10\}/,
    );
    expect(message({ action: { windowSec: 10 } })).toMatch(/"rateLimits\.action\.limit" is missing/);
    expect(message({ action: { limit: 5, windowSec: 0 } })).toMatch(
      /"rateLimits\.action\.windowSec" must be a whole number of seconds from 1 to 86400 \(got 0\)/,
    );
    expect(message({ action: { limit: 5, windowMs: 1000 } })).toMatch(
      /"rateLimits\.action\.windowMs" is not a setting: use "limit" and "windowSec"/,
    );
    expect(message(JSON.parse('{"__proto__": 5}'))).toMatch(/"rateLimits\.__proto__" is not a kind/);
  });

  it('reports through the given fail, as the manifest parser does', () => {
    const fail = (field: string, problem: string): never => {
      throw new UsageError(`app/feature.json: "${field}" ${problem}`, { file: 'app/feature.json' });
    };
    expect(() => parseRateLimits({ action: -1 }, fail)).toThrow(/^app\/feature\.json: "rateLimits\.action" must be/);
  });
});
