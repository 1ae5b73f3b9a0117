import { canonicalAllowHost } from './allow-hosts.js';

export { hostAllowed } from './allow-hosts.js';

/** Limits of the isolates that run a feature's `query`/`mutation`/`action` handlers. */
export interface IsolateLimits {
  /** Heap of one isolate in MB (default 128). Over it, the isolate is replaced and the call gets 500. */
  memoryLimitMb: number;
  /** CPU time one call may use in ms (default 1000); over it, 503. */
  cpuLimitMs: number;
  /** Wall-clock deadline of a query or mutation in ms (default 1000), time awaiting the host included. */
  timeoutMs: number;
  /** Wall-clock deadline of an action in ms (default 10000). */
  actionTimeoutMs: number;
  /** Isolates running calls at once (default 8); further calls wait for one. */
  maxIsolates: number;
  /** Largest result a handler may return, as JSON text (default 4 MiB). */
  maxResultBytes: number;
  fetch: {
    /**
     * Hosts `ctx.fetch` may reach (`api.example.com`, `*.example.com`, `127.0.0.1:8080`); `null`: any.
     * Loopback, private and other non-public addresses only through an exact (non-wildcard) entry.
     */
    allowHosts: string[] | null;
    /** Per request in ms (default 5000, and never past the action's deadline). */
    timeoutMs: number;
    /** Largest response body in bytes (default 1 MiB). */
    maxResponseBytes: number;
  };
}

export const DEFAULT_LIMITS: IsolateLimits = Object.freeze({
  memoryLimitMb: 128,
  cpuLimitMs: 1000,
  timeoutMs: 1000,
  actionTimeoutMs: 10_000,
  maxIsolates: 8,
  maxResultBytes: 4 * 1024 * 1024,
  fetch: Object.freeze({ allowHosts: null, timeoutMs: 5000, maxResponseBytes: 1024 * 1024 }),
});

const NUMBER_FIELDS = [
  'memoryLimitMb',
  'cpuLimitMs',
  'timeoutMs',
  'actionTimeoutMs',
  'maxIsolates',
  'maxResultBytes',
] as const;

/**
 * Reads the `isolate` field of `feature.json`; `fail(field, problem)` throws the usage error.
 *
 * @example
 * parseIsolateLimits({ memoryLimitMb: 64, fetch: { allowHosts: ['api.example.com'] } }, fail)
 */
export function parseIsolateLimits(value: unknown, fail: (field: string, problem: string) => never): IsolateLimits {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    fail('isolate', 'must be an object like {"memoryLimitMb": 128}');
  const input = value as Record<string, unknown>;
  // A misspelt limit would silently not apply: refuse it, like "rateLimits" does.
  refuseUnknown(input, [...NUMBER_FIELDS, 'fetch'], 'isolate', fail);
  const limits: IsolateLimits = { ...DEFAULT_LIMITS, fetch: { ...DEFAULT_LIMITS.fetch } };
  for (const key of NUMBER_FIELDS) {
    if (input[key] !== undefined) limits[key] = positiveInteger(input[key], `isolate.${key}`, fail);
  }
  if (limits.memoryLimitMb < 8) fail('isolate.memoryLimitMb', 'must be at least 8');
  const fetch = input.fetch;
  if (fetch !== undefined) {
    if (typeof fetch !== 'object' || fetch === null || Array.isArray(fetch))
      fail('isolate.fetch', 'must be an object like {"allowHosts": ["api.example.com"]}');
    const f = fetch as Record<string, unknown>;
    refuseUnknown(f, ['allowHosts', 'timeoutMs', 'maxResponseBytes'], 'isolate.fetch', fail);
    if (f.allowHosts !== undefined) {
      limits.fetch.allowHosts = parseAllowHosts(f.allowHosts, fail);
    }
    if (f.timeoutMs !== undefined)
      limits.fetch.timeoutMs = positiveInteger(f.timeoutMs, 'isolate.fetch.timeoutMs', fail);
    if (f.maxResponseBytes !== undefined)
      limits.fetch.maxResponseBytes = positiveInteger(f.maxResponseBytes, 'isolate.fetch.maxResponseBytes', fail);
  }
  return limits;
}

function refuseUnknown(
  input: Record<string, unknown>,
  known: readonly string[],
  field: string,
  fail: (field: string, problem: string) => never,
): void {
  for (const key of Object.keys(input)) {
    if (!known.includes(key)) fail(`${field}.${key}`, `is not a limit: use one of ${known.join(', ')}`);
  }
}

function positiveInteger(value: unknown, field: string, fail: (field: string, problem: string) => never): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0)
    fail(field, `must be a positive integer (got ${JSON.stringify(value)})`);
  return value as number;
}

/**
 * Each entry in its canonical spelling (see `canonicalAllowHost`), so that matching compares what
 * the URL parser makes of a host: `127.1` is listed as `127.0.0.1`.
 */
function parseAllowHosts(value: unknown, fail: (field: string, problem: string) => never): string[] {
  const problem = 'must be an array of host names such as "api.example.com" or "*.example.com"';
  if (!Array.isArray(value)) fail('isolate.fetch.allowHosts', problem);
  return (value as unknown[]).map((entry) => {
    const canonical = typeof entry === 'string' ? canonicalAllowHost(entry) : null;
    // An IPv6 address is written in brackets: "[::1]" or "[::1]:8080".
    if (canonical === null) {
      fail('isolate.fetch.allowHosts', `${problem}, an IP address or "[::1]:8080" (got ${JSON.stringify(entry)})`);
    }
    return canonical as string;
  });
}
