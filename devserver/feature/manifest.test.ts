import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UsageError } from '../common/usage-error.js';
import { createHost } from '../host/host.js';
import { failure, featureRuntime, rpc, startUpstream } from '../host/__fixtures__/contract-parts.js';
import { DEFAULT_LIMITS } from '../isolate/limits.js';
import { DEFAULT_RATE_LIMITS } from '../rate-limit/limits.js';
import { parseManifest, readManifest, type FeatureManifest, type ParseManifestOptions } from './manifest.js';

// A path as a user's terminal shows it: every message must name it.
const FILE = 'features/reports/feature.json';
const SHA = 'ab'.repeat(32);
const MODULE = { module: 'server-functions.js', exports: ['getData'] };

/** Parses `manifest` (an object, serialized, or text as it is) as `FILE`. */
function parse(manifest: unknown, options: ParseManifestOptions = {}): FeatureManifest {
  return parseManifest(typeof manifest === 'string' ? manifest : JSON.stringify(manifest), FILE, options);
}

/** The error `parse` throws; fails the test when the manifest is accepted. */
function refusal(manifest: unknown, options: ParseManifestOptions = {}): UsageError {
  try {
    parse(manifest, options);
  } catch (error) {
    expect(error).toBeInstanceOf(UsageError);
    expect((error as UsageError).file).toBe(FILE);
    return error as UsageError;
  }
  throw new Error(`accepted: ${JSON.stringify(manifest)}`);
}

/** Parses with a `warn` that collects what it is told. */
function parseWarned(
  manifest: unknown,
  options: ParseManifestOptions = {},
): { manifest: FeatureManifest; warnings: string[] } {
  const warnings: string[] = [];
  return { manifest: parse(manifest, { ...options, warn: (line) => warnings.push(line) }), warnings };
}

describe('feature.json: the document', () => {
  it.each([
    ['an empty file', ''],
    ['a cut-off object', '{"id": "feature-x",'],
    ['single quotes', "{'id': 'feature-x'}"],
    ['a trailing comma', '{"id": "feature-x",}'],
  ])('%s is refused as not valid JSON, naming the file', (_, text) => {
    expect(refusal(text).message).toMatch(/^features\/reports\/feature\.json is not valid JSON: \S/);
  });

  it.each([['[]'], ['"feature-x"'], ['42'], ['null'], ['true']])('%s is refused: the manifest is an object', (text) => {
    expect(refusal(text).message).toBe(`${FILE}: "(root)" must be a JSON object like {"id": "feature-my-feature"}`);
  });

  it('keeps the fields as written for tools that rewrite the file', () => {
    const written = { id: 'feature-x', name: 'Reports', serverFunctions: MODULE, custom: { a: 1 } };
    expect(parse(written).raw).toEqual(written);
  });
});

describe('feature.json: "id"', () => {
  it.each([['a'], ['feature-my-feature'], ['0'], ['feature-2024-q3'], ['x'.repeat(63)]])('accepts %j', (id) => {
    expect(parse({ id })).toEqual({ id, raw: { id } });
  });

  it('is required, and the message shows what to add', () => {
    expect(refusal({ serverFunctions: MODULE }).message).toBe(
      `${FILE}: "id" is missing: add the featureId, e.g. "id": "feature-my-feature"`,
    );
  });

  it.each([
    ['upper-case letters', 'Feature-X'],
    ['an underscore', 'feature_x'],
    ['a space', 'feature x'],
    ['a slash', 'feature/x'],
    ['a dot', 'feature.x'],
    ['non-ASCII letters', 'fëature'],
    ['nothing', ''],
    ['64 characters', 'x'.repeat(64)],
    ['a number', 42],
    ['null', null],
    ['an array', ['feature-x']],
  ])('refuses %s, saying which characters and length are allowed', (_, id) => {
    expect(refusal({ id }).message).toBe(
      `${FILE}: "id" must be lower-case letters, digits and "-", 1 to 63 characters (got ${JSON.stringify(id)})`,
    );
  });
});

describe('feature.json: top-level settings', () => {
  it('reads version, timeoutMs and forwardAuthHeaders', () => {
    const manifest = parse({ id: 'feature-x', version: '1.4.0', timeoutMs: 2500, forwardAuthHeaders: false });
    expect([manifest.version, manifest.timeoutMs, manifest.forwardAuthHeaders]).toEqual(['1.4.0', 2500, false]);
  });

  it('leaves what is not written unset, so the host applies its defaults', () => {
    const manifest = parse({ id: 'feature-x' });
    for (const field of [
      'version',
      'timeoutMs',
      'forwardAuthHeaders',
      'isolate',
      'rateLimits',
      'db',
      'serverFunctions',
    ]) {
      expect(manifest, field).not.toHaveProperty(field);
    }
  });

  it.each([
    [{ version: 2 }, '"version" must be a string'],
    [{ timeoutMs: 0 }, '"timeoutMs" must be a positive number of milliseconds (got 0)'],
    [{ timeoutMs: -5 }, '"timeoutMs" must be a positive number of milliseconds (got -5)'],
    [{ timeoutMs: '10s' }, '"timeoutMs" must be a positive number of milliseconds (got "10s")'],
    [{ timeoutMs: null }, '"timeoutMs" must be a positive number of milliseconds (got null)'],
    [{ forwardAuthHeaders: 'false' }, '"forwardAuthHeaders" must be true or false'],
    [{ forwardAuthHeaders: 0 }, '"forwardAuthHeaders" must be true or false'],
  ])('refuses %j', (fields, problem) => {
    expect(refusal({ id: 'feature-x', ...fields }).message).toBe(`${FILE}: ${problem}`);
  });
});

describe('feature.json: "serverFunctions"', () => {
  it('module mode: the module path and the callable names', () => {
    const sf = { module: 'server-functions.js', exports: ['getData', 'saveData', '$raw', '_private2'] };
    expect(parse({ id: 'feature-x', serverFunctions: sf }).serverFunctions).toEqual(sf);
  });

  it('endpoint mode: an http or https URL', () => {
    for (const endpoint of ['http://127.0.0.1:4000/rpc', 'https://api.example.com/feature/rpc/']) {
      const manifest = parse({ id: 'feature-x', serverFunctions: { endpoint, exports: ['getData'] } });
      expect(manifest.serverFunctions).toEqual({ endpoint, exports: ['getData'] });
    }
  });

  it('"exports" may be left out while developing (none callable yet)', () => {
    expect(parse({ id: 'feature-x', serverFunctions: { module: 'a.js' } }).serverFunctions).toEqual({
      module: 'a.js',
      exports: [],
    });
  });

  it.each([
    [[], '"serverFunctions" must be an object with "module" or "endpoint" and "exports"'],
    ['server-functions.js', '"serverFunctions" must be an object with "module" or "endpoint" and "exports"'],
    [null, '"serverFunctions" must be an object with "module" or "endpoint" and "exports"'],
    [{ exports: ['getData'] }, '"serverFunctions" needs "module" (e.g. "server-functions.js") or "endpoint" (a URL)'],
    [
      { module: 'a.js', endpoint: 'http://127.0.0.1:4000', exports: [] },
      '"serverFunctions" has both "module" and "endpoint": keep exactly one',
    ],
    [{ module: '', exports: [] }, '"serverFunctions.module" must be a non-empty string'],
    [{ module: 42, exports: [] }, '"serverFunctions.module" must be a non-empty string'],
    [
      { endpoint: 'ftp://files.example.com', exports: [] },
      '"serverFunctions.endpoint" must be an http(s) URL (got "ftp://files.example.com")',
    ],
    [{ endpoint: '/rpc', exports: [] }, '"serverFunctions.endpoint" must be an http(s) URL (got "/rpc")'],
    [{ endpoint: 4000, exports: [] }, '"serverFunctions.endpoint" must be an http(s) URL (got 4000)'],
    [
      { module: 'a.js', exports: 'getData' },
      '"serverFunctions.exports" must be an array of function names (got "getData")',
    ],
    [
      { module: 'a.js', exports: { getData: true } },
      '"serverFunctions.exports" must be an array of function names (got {"getData":true})',
    ],
    [
      { module: 'a.js', exports: ['getData', 'get-data'] },
      '"serverFunctions.exports[1]" must be a function name (got "get-data")',
    ],
    [{ module: 'a.js', exports: ['1st'] }, '"serverFunctions.exports[0]" must be a function name (got "1st")'],
    [{ module: 'a.js', exports: [''] }, '"serverFunctions.exports[0]" must be a function name (got "")'],
    [{ module: 'a.js', exports: ['a', 7] }, '"serverFunctions.exports[1]" must be a function name (got 7)'],
    [{ module: 'a.js', exports: [null] }, '"serverFunctions.exports[0]" must be a function name (got null)'],
    [
      { module: 'a.js', exports: [], serverFunctionsSha256: SHA.toUpperCase() },
      '"serverFunctions.serverFunctionsSha256" must be 64 lower-case hex digits',
    ],
    [
      { module: 'a.js', exports: [], serverFunctionsSha256: 'abc' },
      '"serverFunctions.serverFunctionsSha256" must be 64 lower-case hex digits',
    ],
  ])('refuses %j', (serverFunctions, problem) => {
    expect(refusal({ id: 'feature-x', serverFunctions }).message).toBe(`${FILE}: ${problem}`);
  });

  // SPEC §3: where a reader of the seed puts them, inside "serverFunctions", they mean the same.
  it('accepts timeoutMs and forwardAuthHeaders inside "serverFunctions" too, without a warning', () => {
    const sf = {
      endpoint: 'http://127.0.0.1:4000/rpc',
      exports: ['getData'],
      timeoutMs: 500,
      forwardAuthHeaders: false,
    };
    const { manifest, warnings } = parseWarned({ id: 'feature-x', serverFunctions: sf });
    expect([manifest.timeoutMs, manifest.forwardAuthHeaders]).toEqual([500, false]);
    expect(warnings).toEqual([]);
    const both = parse({ id: 'feature-x', timeoutMs: 500, serverFunctions: { ...MODULE, timeoutMs: 500 } });
    expect(both.timeoutMs).toBe(500);
  });

  it('serverFunctions.timeoutMs next to "endpoint" is the time the host gives the upstream', async () => {
    const upstream = await startUpstream();
    const feature = featureRuntime(
      { id: 'feature-ep', serverFunctions: { endpoint: `${upstream.url}/rpc`, exports: ['slow'], timeoutMs: 150 } },
      { modules: () => [] },
    );
    try {
      const { app } = createHost([feature.feature], { logCall: null });
      const started = performance.now();
      const answer = await failure(await rpc(app, 'feature-ep', 'slow'));
      expect([answer.status, answer.error]).toEqual([503, 'RPC upstream timed out after 150 ms']);
      // The upstream answers after 2 s; the default would be 10 s.
      expect(performance.now() - started).toBeLessThan(1500);
    } finally {
      await feature.close();
      await upstream.close();
    }
  });

  it.each([
    ['timeoutMs', 500, 800],
    ['forwardAuthHeaders', true, false],
  ])('refuses %s written at both places with different values, naming both', (field, top, inner) => {
    const error = refusal({ id: 'feature-x', [field]: top, serverFunctions: { ...MODULE, [field]: inner } });
    expect(error.message).toContain(FILE);
    expect(error.message).toContain(`serverFunctions.${field}`);
    expect(error.message).toContain(`"${field}"`);
  });
});

describe('feature.json: the runtime manifest (dist-server/feature.json)', () => {
  const HANDLERS = {
    bundle: 'handlers.js',
    sha256: SHA,
    kinds: { topRules: 'query', addRule: 'mutation', sync: 'action' },
  };
  const runtime = { runtime: true };

  it('reads the module digest and the handler bundle that `vite build` writes', () => {
    const sf = {
      module: 'server-functions.js',
      exports: ['topRules', 'addRule', 'sync'],
      serverFunctionsSha256: SHA,
      handlers: HANDLERS,
    };
    expect(parse({ id: 'feature-x', serverFunctions: sf }, runtime).serverFunctions).toEqual(sf);
  });

  it('accepts an .mjs bundle', () => {
    const sf = { ...MODULE, handlers: { ...HANDLERS, bundle: 'handlers.mjs' } };
    expect(parse({ id: 'feature-x', serverFunctions: sf }, runtime).serverFunctions?.handlers?.bundle).toBe(
      'handlers.mjs',
    );
  });

  it.each([
    [{ module: 'a.js', exports: [] }, '"serverFunctions.exports" must not be empty in the runtime manifest'],
    [{ module: 'a.js' }, '"serverFunctions.exports" must not be empty in the runtime manifest'],
  ])('must list at least one export: %j', (serverFunctions, problem) => {
    expect(refusal({ id: 'feature-x', serverFunctions }, runtime).message).toBe(`${FILE}: ${problem}`);
  });

  const KINDS_PROBLEM =
    '"serverFunctions.handlers.kinds" must map each handler name to "query", "mutation" or "action"';
  it.each([
    ['not an object', 'handlers.js', '"serverFunctions.handlers.bundle" must be a file name such as "handlers.js"'],
    [
      'a bundle in another folder',
      { ...HANDLERS, bundle: '../handlers.js' },
      '"serverFunctions.handlers.bundle" must be a file name such as "handlers.js"',
    ],
    [
      'a bundle that is not JavaScript',
      { ...HANDLERS, bundle: 'handlers.ts' },
      '"serverFunctions.handlers.bundle" must be a file name such as "handlers.js"',
    ],
    [
      'no bundle',
      { sha256: SHA, kinds: {} },
      '"serverFunctions.handlers.bundle" must be a file name such as "handlers.js"',
    ],
    [
      'no digest',
      { bundle: 'handlers.js', kinds: {} },
      '"serverFunctions.handlers.sha256" must be 64 lower-case hex digits',
    ],
    [
      'a short digest',
      { ...HANDLERS, sha256: 'abc123' },
      '"serverFunctions.handlers.sha256" must be 64 lower-case hex digits',
    ],
    ['no kinds', { bundle: 'handlers.js', sha256: SHA }, KINDS_PROBLEM],
    ['kinds as a list', { ...HANDLERS, kinds: ['query'] }, KINDS_PROBLEM],
    ['a kind that does not run in an isolate', { ...HANDLERS, kinds: { listRules: 'queryRows' } }, KINDS_PROBLEM],
    ['a kind in capitals', { ...HANDLERS, kinds: { topRules: 'Query' } }, KINDS_PROBLEM],
  ])('refuses handlers with %s', (_, handlers, problem) => {
    const serverFunctions = { ...MODULE, handlers };
    expect(refusal({ id: 'feature-x', serverFunctions }, runtime).message).toBe(`${FILE}: ${problem}`);
  });
});

describe('feature.json: "isolate", "rateLimits", "db"', () => {
  it('isolate: the limits written, the defaults for the rest', () => {
    const isolate = parse({ id: 'feature-x', isolate: { memoryLimitMb: 32, cpuLimitMs: 200, maxIsolates: 2 } }).isolate;
    expect(isolate).toEqual({ ...DEFAULT_LIMITS, memoryLimitMb: 32, cpuLimitMs: 200, maxIsolates: 2 });
  });

  it('rateLimits: calls per minute, or a limit per window; the other kinds keep their defaults', () => {
    const limits = parse({
      id: 'feature-x',
      rateLimits: { query: 300, action: { limit: 5, windowSec: 10 } },
    }).rateLimits;
    expect(limits).toEqual({
      ...DEFAULT_RATE_LIMITS,
      query: { limit: 300, windowMs: 60_000 },
      action: { limit: 5, windowMs: 10_000 },
    });
  });

  it.each([[1], [1000], [60_000]])('db.transactionTimeoutMs: accepts %d', (transactionTimeoutMs) => {
    expect(parse({ id: 'feature-x', db: { transactionTimeoutMs } }).db).toEqual({ transactionTimeoutMs });
  });

  it('db: an empty object sets nothing', () => {
    expect(parse({ id: 'feature-x', db: {} }).db).toEqual({});
  });

  const TX_PROBLEM = '"db.transactionTimeoutMs" must be a whole number of milliseconds from 1 to 60000';
  it.each([
    [{ isolate: [] }, '"isolate" must be an object like {"memoryLimitMb": 128}'],
    [{ isolate: { memoryLimitMb: 4 } }, '"isolate.memoryLimitMb" must be at least 8'],
    [{ isolate: { cpuLimitMs: 1.5 } }, '"isolate.cpuLimitMs" must be a positive integer (got 1.5)'],
    [{ isolate: { fetch: { timeoutMs: '5s' } } }, '"isolate.fetch.timeoutMs" must be a positive integer (got "5s")'],
    [
      { rateLimits: [100] },
      '"rateLimits" must be an object like {"query": 300, "action": {"limit": 5, "windowSec": 10}} (got [100])',
    ],
    [
      { rateLimits: { queries: 100 } },
      '"rateLimits.queries" is not a kind of server function: use one of queryRows, insertRow, patchRow, deleteRow, query, mutation, action, plain',
    ],
    [{ rateLimits: { query: 0 } }, '"rateLimits.query" must be a whole number of calls from 1 to 1000000 (got 0)'],
    [
      { rateLimits: { action: { limit: 5, windowSec: 0 } } },
      '"rateLimits.action.windowSec" must be a whole number of seconds from 1 to 86400 (got 0)',
    ],
    [{ rateLimits: { action: { max: 5 } } }, '"rateLimits.action.max" is not a setting: use "limit" and "windowSec"'],
    [{ db: 1000 }, '"db" must be an object like {"transactionTimeoutMs": 1000}'],
    [{ db: { transactionTimeoutMs: 0 } }, `${TX_PROBLEM} (got 0)`],
    [{ db: { transactionTimeoutMs: 1.5 } }, `${TX_PROBLEM} (got 1.5)`],
    [{ db: { transactionTimeoutMs: 60_001 } }, `${TX_PROBLEM} (got 60001)`],
    [{ db: { transactionTimeoutMs: '1s' } }, `${TX_PROBLEM} (got "1s")`],
  ])('refuses %j, naming this file', (fields, problem) => {
    expect(refusal({ id: 'feature-x', ...fields }).message).toBe(`${FILE}: ${problem}`);
  });
});

describe('feature.json: unknown fields', () => {
  it('warn, one line each, naming the file and the field, and the manifest still loads', () => {
    const { manifest, warnings } = parseWarned({
      id: 'feature-x',
      timeout: 500,
      serverFunctions: { ...MODULE, exprots: ['getData'] },
      db: { transactionTimeout: 100 },
    });
    expect(manifest.id).toBe('feature-x');
    expect(manifest.serverFunctions?.exports).toEqual(['getData']);
    expect(warnings.sort()).toEqual([
      `${FILE}: unknown field "db.transactionTimeout" is ignored`,
      `${FILE}: unknown field "serverFunctions.exprots" is ignored`,
      `${FILE}: unknown field "timeout" is ignored`,
    ]);
  });

  it('are ignored without a warn callback', () => {
    expect(parse({ id: 'feature-x', somethingElse: true }).id).toBe('feature-x');
  });

  it('the fields a user is expected to write draw no warning', () => {
    const { warnings } = parseWarned({
      $schema: './feature.schema.json',
      id: 'feature-x',
      name: 'Reports',
      description: 'Monthly reports',
      version: '1.0.0',
      auth: {},
      timeoutMs: 1000,
      forwardAuthHeaders: true,
      isolate: {},
      rateLimits: {},
      db: {},
      serverFunctions: {
        ...MODULE,
        serverFunctionsSha256: SHA,
        handlers: { bundle: 'handlers.js', sha256: SHA, kinds: {} },
      },
    });
    expect(warnings).toEqual([]);
  });
});

describe('readManifest', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'manifest-test-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reads and validates the file', () => {
    const file = path.join(dir, 'feature.json');
    writeFileSync(file, JSON.stringify({ id: 'feature-read', serverFunctions: MODULE }));
    expect(readManifest(file).serverFunctions).toEqual(MODULE);
  });

  it('names the file in validation errors', () => {
    const file = path.join(dir, 'bad-id.json');
    writeFileSync(file, JSON.stringify({ id: 'Bad Id' }));
    expect(() => readManifest(file)).toThrowError(
      new UsageError(`${file}: "id" must be lower-case letters, digits and "-", 1 to 63 characters (got "Bad Id")`, {
        file,
      }),
    );
  });

  it('passes the options on: the runtime manifest must list exports', () => {
    const file = path.join(dir, 'runtime.json');
    writeFileSync(file, JSON.stringify({ id: 'feature-read', serverFunctions: { module: 'a.js', exports: [] } }));
    expect(readManifest(file).serverFunctions?.exports).toEqual([]);
    expect(() => readManifest(file, { runtime: true })).toThrowError(
      /"serverFunctions\.exports" must not be empty in the runtime manifest/,
    );
  });

  it('a missing file is a usage error naming it', () => {
    const file = path.join(dir, 'missing', 'feature.json');
    let error: unknown;
    try {
      readManifest(file);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(UsageError);
    expect((error as UsageError).file).toBe(file);
    expect((error as UsageError).message).toMatch(
      new RegExp(`^Cannot read the feature manifest ${escape(file)}: ENOENT`),
    );
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

describe('feature.json: limits that would silently not apply are refused', () => {
  it('refuses a misspelt isolate limit, naming the known ones', () => {
    for (const [isolate, field, known] of [
      [{ memoryLimitMB: 64 }, 'isolate.memoryLimitMB', 'memoryLimitMb'],
      [{ fetch: { allowhosts: ['api.example.com'] } }, 'isolate.fetch.allowhosts', 'allowHosts'],
    ] as const) {
      const error = refusal({ id: 'feature-x', isolate });
      expect(error.message).toContain(`"${field}" is not a limit: use one of`);
      expect(error.message).toContain(known);
    }
  });

  it('refuses a timeoutMs longer than a timer can wait, which would fire at once', () => {
    expect(parse({ id: 'feature-x', timeoutMs: 2 ** 31 - 1 }).timeoutMs).toBe(2 ** 31 - 1);
    const error = refusal({ id: 'feature-x', timeoutMs: 3_000_000_000 });
    expect(error.message).toBe(
      `${FILE}: "timeoutMs" must be at most 2147483647 milliseconds (about 24 days; got 3000000000)`,
    );
  });
});
