import { readFileSync } from 'node:fs';
import { HANDLER_KINDS, isHandlerKind, type HandlerKind } from '../../runtime/kinds.js';
import { FEATURE_ID_PATTERN } from '../../runtime/protocol.js';
import { parseIsolateLimits, type IsolateLimits } from '../isolate/limits.js';
import { parseRateLimits, type RateLimits } from '../rate-limit/limits.js';
import { UsageError } from '../common/usage-error.js';

/** `serverFunctions` of `feature.json`: where the functions live and which are callable. */
export interface ServerFunctionsManifest {
  /** Module path (relative to the manifest, or a URL) in module mode. */
  module?: string;
  /** Base URL of the feature's own backend in endpoint proxy mode. */
  endpoint?: string;
  /** The functions clients may call. */
  exports: string[];
  /** sha256 (hex) of the module bytes; written by `vite build`. */
  serverFunctionsSha256?: string;
  /** Runtime manifest: the isolate bundle of `query`/`mutation`/`action` handlers (beside the module). */
  handlers?: { bundle: string; sha256: string; kinds: Record<string, HandlerKind> };
}

/** A validated `feature.json`. */
export interface FeatureManifest {
  id: string;
  version?: string;
  serverFunctions?: ServerFunctionsManifest;
  /** Per-call time limit in ms (default 10000). */
  timeoutMs?: number;
  /** Endpoint mode: forward the caller's auth headers (default true). */
  forwardAuthHeaders?: boolean;
  /** Limits of the isolates running handler functions (defaults when absent). */
  isolate?: IsolateLimits;
  /** Rate limits per function kind, when the manifest sets them (the defaults filled in). */
  rateLimits?: RateLimits;
  /** Database settings: `transactionTimeoutMs`, the most a transaction may hold the database. */
  db?: { transactionTimeoutMs?: number };
  /** The manifest's fields as written, for tools that rewrite it. */
  raw: Record<string, unknown>;
}

export interface ParseManifestOptions {
  /** The runtime manifest (in `dist-server/`) must list at least one export. */
  runtime?: boolean;
  /** Receives one line per unknown field. */
  warn?: (message: string) => void;
}

const KNOWN_FIELDS = new Set([
  'id',
  'version',
  'serverFunctions',
  'timeoutMs',
  'forwardAuthHeaders',
  'isolate',
  'rateLimits',
  'db',
  'auth',
  'name',
  'description',
  '$schema',
]);
const KNOWN_SERVER_FIELDS = new Set([
  'module',
  'endpoint',
  'exports',
  'serverFunctionsSha256',
  'handlers',
  'timeoutMs',
  'forwardAuthHeaders',
]);
/** The longest `timeoutMs` a timer can wait (2^31 - 1 ms, about 24.8 days); longer ones fire at once. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/**
 * Reads and validates a `feature.json`. Throws `UsageError` naming the file and the field.
 *
 * @example
 * const manifest = readManifest('/repo/feature.json')
 */
export function readManifest(file: string, options: ParseManifestOptions = {}): FeatureManifest {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new UsageError(`Cannot read the feature manifest ${file}: ${(error as Error).message}`, { file });
  }
  return parseManifest(text, file, options);
}

/** Validates manifest text; `file` is only used in messages. */
export function parseManifest(text: string, file: string, options: ParseManifestOptions = {}): FeatureManifest {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new UsageError(`${file} is not valid JSON: ${(error as Error).message}`, { file });
  }
  const fail = (field: string, problem: string): never => {
    throw new UsageError(`${file}: "${field}" ${problem}`, { file });
  };
  if (!isRecord(raw)) fail('(root)', 'must be a JSON object like {"id": "feature-my-feature"}');
  const record = raw as Record<string, unknown>;

  const id = record.id;
  if (id === undefined) fail('id', 'is missing: add the featureId, e.g. "id": "feature-my-feature"');
  if (typeof id !== 'string' || !FEATURE_ID_PATTERN.test(id)) {
    fail('id', `must be lower-case letters, digits and "-", 1 to 63 characters (got ${JSON.stringify(id)})`);
  }
  const manifest: FeatureManifest = { id: id as string, raw: record };

  if (record.version !== undefined) {
    if (typeof record.version !== 'string') fail('version', 'must be a string');
    manifest.version = record.version as string;
  }
  const timeoutMs = parseTimeoutMs(record.timeoutMs, 'timeoutMs', fail);
  const forwardAuthHeaders = parseForwardAuthHeaders(record.forwardAuthHeaders, 'forwardAuthHeaders', fail);
  if (timeoutMs !== undefined) manifest.timeoutMs = timeoutMs;
  if (forwardAuthHeaders !== undefined) manifest.forwardAuthHeaders = forwardAuthHeaders;
  if (record.isolate !== undefined) manifest.isolate = parseIsolateLimits(record.isolate, fail);
  if (record.rateLimits !== undefined) manifest.rateLimits = parseRateLimits(record.rateLimits, fail);
  if (record.db !== undefined) manifest.db = parseDb(record.db, fail, options, file);
  if (record.serverFunctions !== undefined) {
    manifest.serverFunctions = parseServerFunctions(record.serverFunctions, fail, options, file);
    // Where a reader of the seed puts them, inside "serverFunctions", they mean the same.
    const sf = record.serverFunctions as Record<string, unknown>;
    const inner = {
      timeoutMs: parseTimeoutMs(sf.timeoutMs, 'serverFunctions.timeoutMs', fail),
      forwardAuthHeaders: parseForwardAuthHeaders(sf.forwardAuthHeaders, 'serverFunctions.forwardAuthHeaders', fail),
    };
    for (const field of ['timeoutMs', 'forwardAuthHeaders'] as const) {
      const top = manifest[field];
      const value = inner[field];
      if (value === undefined) continue;
      if (top !== undefined && top !== value) {
        fail(`serverFunctions.${field}`, `is ${value}, but "${field}" at the top level is ${top}: write it once`);
      }
      (manifest as Record<typeof field, unknown>)[field] = value;
    }
  }
  for (const key of Object.keys(record)) {
    if (!KNOWN_FIELDS.has(key)) options.warn?.(`${file}: unknown field "${key}" is ignored`);
  }
  return manifest;
}

function parseTimeoutMs(
  t: unknown,
  field: string,
  fail: (field: string, problem: string) => never,
): number | undefined {
  if (t === undefined) return undefined;
  if (typeof t !== 'number' || !Number.isFinite(t) || t <= 0)
    fail(field, `must be a positive number of milliseconds (got ${JSON.stringify(t)})`);
  if ((t as number) > MAX_TIMEOUT_MS)
    fail(field, `must be at most ${MAX_TIMEOUT_MS} milliseconds (about 24 days; got ${t})`);
  return t as number;
}

function parseForwardAuthHeaders(
  value: unknown,
  field: string,
  fail: (field: string, problem: string) => never,
): boolean | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'boolean') fail(field, 'must be true or false');
  return value as boolean;
}

function parseServerFunctions(
  value: unknown,
  fail: (field: string, problem: string) => never,
  options: ParseManifestOptions,
  file: string,
): ServerFunctionsManifest {
  if (!isRecord(value)) fail('serverFunctions', 'must be an object with "module" or "endpoint" and "exports"');
  const sf = value as Record<string, unknown>;
  const hasModule = sf.module !== undefined;
  const hasEndpoint = sf.endpoint !== undefined;
  if (hasModule && hasEndpoint) fail('serverFunctions', 'has both "module" and "endpoint": keep exactly one');
  if (!hasModule && !hasEndpoint)
    fail('serverFunctions', 'needs "module" (e.g. "server-functions.js") or "endpoint" (a URL)');
  if (hasModule && (typeof sf.module !== 'string' || sf.module === ''))
    fail('serverFunctions.module', 'must be a non-empty string');
  if (hasEndpoint) {
    if (typeof sf.endpoint !== 'string' || !/^https?:\/\//.test(sf.endpoint))
      fail('serverFunctions.endpoint', `must be an http(s) URL (got ${JSON.stringify(sf.endpoint)})`);
  }
  const exports = sf.exports ?? [];
  if (!Array.isArray(exports))
    fail('serverFunctions.exports', `must be an array of function names (got ${JSON.stringify(exports)})`);
  const names = exports as unknown[];
  names.forEach((name, i) => {
    if (typeof name !== 'string' || !/^[A-Za-z_$][\w$]*$/.test(name))
      fail(`serverFunctions.exports[${i}]`, `must be a function name (got ${JSON.stringify(name)})`);
  });
  if (options.runtime && names.length === 0)
    fail('serverFunctions.exports', 'must not be empty in the runtime manifest');
  if (
    sf.serverFunctionsSha256 !== undefined &&
    (typeof sf.serverFunctionsSha256 !== 'string' || !/^[0-9a-f]{64}$/.test(sf.serverFunctionsSha256))
  ) {
    fail('serverFunctions.serverFunctionsSha256', 'must be 64 lower-case hex digits');
  }
  for (const key of Object.keys(sf)) {
    if (!KNOWN_SERVER_FIELDS.has(key)) options.warn?.(`${file}: unknown field "serverFunctions.${key}" is ignored`);
  }
  const result: ServerFunctionsManifest = { exports: names as string[] };
  if (sf.handlers !== undefined) result.handlers = parseHandlers(sf.handlers, fail);
  if (hasModule) result.module = sf.module as string;
  if (hasEndpoint) result.endpoint = sf.endpoint as string;
  if (typeof sf.serverFunctionsSha256 === 'string') result.serverFunctionsSha256 = sf.serverFunctionsSha256;
  return result;
}

function parseHandlers(
  value: unknown,
  fail: (field: string, problem: string) => never,
): NonNullable<ServerFunctionsManifest['handlers']> {
  const h = (isRecord(value) ? value : {}) as Record<string, unknown>;
  if (typeof h.bundle !== 'string' || !/^[\w.-]+\.m?js$/.test(h.bundle))
    fail('serverFunctions.handlers.bundle', 'must be a file name such as "handlers.js"');
  if (typeof h.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(h.sha256))
    fail('serverFunctions.handlers.sha256', 'must be 64 lower-case hex digits');
  const kinds = h.kinds;
  if (!isRecord(kinds) || !Object.values(kinds).every(isHandlerKind)) {
    const names = HANDLER_KINDS.map((k) => `"${k}"`);
    fail(
      'serverFunctions.handlers.kinds',
      `must map each handler name to ${names.slice(0, -1).join(', ')} or ${names.at(-1)}`,
    );
  }
  return {
    bundle: h.bundle as string,
    sha256: h.sha256 as string,
    kinds: { ...(kinds as Record<string, HandlerKind>) },
  };
}

/** Past a minute a transaction is no longer a request's work; PGlite would stall for all of it. */
const MAX_TRANSACTION_TIMEOUT_MS = 60_000;

function parseDb(
  value: unknown,
  fail: (field: string, problem: string) => never,
  options: ParseManifestOptions,
  file: string,
): { transactionTimeoutMs?: number } {
  if (!isRecord(value)) fail('db', 'must be an object like {"transactionTimeoutMs": 1000}');
  const db = value as Record<string, unknown>;
  const result: { transactionTimeoutMs?: number } = {};
  const t = db.transactionTimeoutMs;
  if (t !== undefined) {
    if (typeof t !== 'number' || !Number.isInteger(t) || t <= 0 || t > MAX_TRANSACTION_TIMEOUT_MS) {
      const range = `from 1 to ${MAX_TRANSACTION_TIMEOUT_MS}`;
      fail('db.transactionTimeoutMs', `must be a whole number of milliseconds ${range} (got ${JSON.stringify(t)})`);
    }
    result.transactionTimeoutMs = t as number;
  }
  for (const key of Object.keys(db)) {
    if (key !== 'transactionTimeoutMs') options.warn?.(`${file}: unknown field "db.${key}" is ignored`);
  }
  return result;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
