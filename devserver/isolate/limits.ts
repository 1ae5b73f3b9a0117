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
    /** Hosts `ctx.fetch` may reach (`api.example.com`, `*.example.com`); `null`: any. */
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

const NUMBER_FIELDS = ['memoryLimitMb', 'cpuLimitMs', 'timeoutMs', 'actionTimeoutMs', 'maxIsolates', 'maxResultBytes'] as const;

/**
 * Reads the `isolate` field of `feature.json`; `fail(field, problem)` throws the usage error.
 *
 * @example
 * parseIsolateLimits({ memoryLimitMb: 64, fetch: { allowHosts: ['api.example.com'] } }, fail)
 */
export function parseIsolateLimits(value: unknown, fail: (field: string, problem: string) => never): IsolateLimits {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail('isolate', 'must be an object like {"memoryLimitMb": 128}');
  const input = value as Record<string, unknown>;
  const limits: IsolateLimits = { ...DEFAULT_LIMITS, fetch: { ...DEFAULT_LIMITS.fetch } };
  for (const key of NUMBER_FIELDS) {
    if (input[key] !== undefined) limits[key] = positiveInteger(input[key], `isolate.${key}`, fail);
  }
  if (limits.memoryLimitMb < 8) fail('isolate.memoryLimitMb', 'must be at least 8');
  const fetch = input.fetch;
  if (fetch !== undefined) {
    if (typeof fetch !== 'object' || fetch === null || Array.isArray(fetch)) fail('isolate.fetch', 'must be an object like {"allowHosts": ["api.example.com"]}');
    const f = fetch as Record<string, unknown>;
    if (f.allowHosts !== undefined) {
      if (!Array.isArray(f.allowHosts) || !f.allowHosts.every((h) => typeof h === 'string' && /^(\*\.)?[a-z0-9.-]+(:\d+)?$/i.test(h))) {
        fail('isolate.fetch.allowHosts', 'must be an array of host names such as "api.example.com" or "*.example.com"');
      }
      limits.fetch.allowHosts = (f.allowHosts as string[]).map((h) => h.toLowerCase());
    }
    if (f.timeoutMs !== undefined) limits.fetch.timeoutMs = positiveInteger(f.timeoutMs, 'isolate.fetch.timeoutMs', fail);
    if (f.maxResponseBytes !== undefined) limits.fetch.maxResponseBytes = positiveInteger(f.maxResponseBytes, 'isolate.fetch.maxResponseBytes', fail);
  }
  return limits;
}

function positiveInteger(value: unknown, field: string, fail: (field: string, problem: string) => never): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) fail(field, `must be a positive integer (got ${JSON.stringify(value)})`);
  return value as number;
}

/** True when `host` (hostname, or hostname:port) is allowed by the list. */
export function hostAllowed(allowHosts: readonly string[] | null, url: URL): boolean {
  if (allowHosts === null) return true;
  const name = url.hostname.toLowerCase();
  return allowHosts.some((pattern) => {
    const [patternHost, port] = pattern.split(':') as [string, string | undefined];
    if (port !== undefined && port !== (url.port || (url.protocol === 'https:' ? '443' : '80'))) return false;
    return patternHost.startsWith('*.') ? name.endsWith(patternHost.slice(1)) : name === patternHost;
  });
}
