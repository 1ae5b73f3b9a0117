import { FUNCTION_KINDS, isFunctionKind, type FunctionKind } from '../../runtime/kinds.js';
import { UsageError } from '../common/usage-error.js';

// Each kind of server function (runtime/kinds.ts) has its own budget.

/** At most `limit` calls per `windowMs`, per installation (featureId + tenantId). */
export interface RateLimit {
  readonly limit: number;
  readonly windowMs: number;
}

/** The limit of each kind of function of one feature. */
export type RateLimits = Readonly<Record<FunctionKind, RateLimit>>;

const MINUTE_MS = 60_000;
/** Bounds that catch typos (a limit of 0, a window in ms written as seconds) early. */
const MAX_LIMIT = 1_000_000;
const MAX_WINDOW_SEC = 86_400;

const perMinute = (limit: number): RateLimit => Object.freeze({ limit, windowMs: MINUTE_MS });

/** The defaults of the spec, per minute. */
export const DEFAULT_RATE_LIMITS: RateLimits = Object.freeze({
  queryRows: perMinute(100),
  insertRow: perMinute(50),
  patchRow: perMinute(50),
  deleteRow: perMinute(50),
  query: perMinute(100),
  mutation: perMinute(50),
  action: perMinute(20),
  plain: perMinute(100),
});

/** Throws the usage error for `field` (a dotted path such as `rateLimits.action.limit`). */
export type FailField = (field: string, problem: string) => never;

/**
 * Reads the `rateLimits` field of `feature.json`: the defaults, with the kinds it names replaced.
 * A number is calls per minute; an object sets the window too (`windowSec`, default 60).
 * `fail(field, problem)` throws the usage error; by default a `UsageError` naming `feature.json`.
 *
 * @example
 * parseRateLimits({ query: 300, action: { limit: 5, windowSec: 10 } })
 * // query: 300 per 60 s, action: 5 per 10 s, the other kinds their defaults
 */
export function parseRateLimits(value: unknown, fail: FailField = failInManifest): RateLimits {
  if (value === undefined) return DEFAULT_RATE_LIMITS;
  if (!isRecord(value))
    fail(
      'rateLimits',
      `must be an object like {"query": 300, "action": {"limit": 5, "windowSec": 10}} (got ${JSON.stringify(value)})`,
    );
  const limits: Record<FunctionKind, RateLimit> = { ...DEFAULT_RATE_LIMITS };
  for (const [key, entry] of Object.entries(value as Record<string, unknown>)) {
    if (!isFunctionKind(key))
      fail(`rateLimits.${key}`, `is not a kind of server function: use one of ${FUNCTION_KINDS.join(', ')}`);
    limits[key as FunctionKind] = parseEntry(entry, `rateLimits.${key}`, fail);
  }
  return Object.freeze(limits);
}

function parseEntry(entry: unknown, field: string, fail: FailField): RateLimit {
  if (typeof entry === 'number') return Object.freeze({ limit: limitOf(entry, field, fail), windowMs: MINUTE_MS });
  if (!isRecord(entry))
    fail(field, `must be calls per minute (a number) or {"limit": 5, "windowSec": 10} (got ${JSON.stringify(entry)})`);
  const record = entry as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (key !== 'limit' && key !== 'windowSec')
      fail(`${field}.${key}`, 'is not a setting: use "limit" and "windowSec"');
  }
  if (record.limit === undefined) fail(`${field}.limit`, 'is missing: add the number of calls allowed per window');
  const limit = limitOf(record.limit, `${field}.limit`, fail);
  const windowSec = record.windowSec ?? 60;
  if (typeof windowSec !== 'number' || !Number.isInteger(windowSec) || windowSec < 1 || windowSec > MAX_WINDOW_SEC) {
    fail(
      `${field}.windowSec`,
      `must be a whole number of seconds from 1 to ${MAX_WINDOW_SEC} (got ${JSON.stringify(record.windowSec)})`,
    );
  }
  return Object.freeze({ limit, windowMs: (windowSec as number) * 1000 });
}

function limitOf(value: unknown, field: string, fail: FailField): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > MAX_LIMIT) {
    fail(field, `must be a whole number of calls from 1 to ${MAX_LIMIT} (got ${JSON.stringify(value)})`);
  }
  return value as number;
}

function failInManifest(field: string, problem: string): never {
  throw new UsageError(`feature.json: "${field}" ${problem}`);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
