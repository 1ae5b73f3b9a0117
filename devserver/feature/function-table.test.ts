import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queryRows } from '../../runtime/declarative.js';
import { contractText } from '../../runtime/protocol.js';
import { RequestError } from '../../runtime/request-error.js';
import type { ServerContext } from '../../runtime/server.js';
import { RawJson } from '../common/raw-json.js';
import { FeatureData } from '../data/feature-data.js';
import { migrate } from '../data/migrate.js';
import { openPglite } from '../data/pglite-client.js';
import type { SqlClient } from '../data/sql-client.js';
import { modelSchema } from '../data/table-model.js';
import { DeclarativeExecutor } from '../executors/declarative-executor.js';
import type { Invocation } from '../executors/executor.js';
import { IsolateExecutor } from '../executors/isolate-executor.js';
import { ModuleExecutor } from '../executors/module-executor.js';
import { ANONYMOUS } from '../auth/identity.js';
import { buildServerContext } from '../host/context.js';
import { bundleHandlers } from '../isolate/bundle-handlers.js';
import { IsolateRunner } from '../isolate/isolate-runner.js';
import { FunctionTable, type ModuleEntry } from './function-table.js';
import { hostedFeature } from './hosted-feature.js';
import * as notesModule from './__fixtures__/function-table/notes.server.js';
import * as schemaModule from './__fixtures__/function-table/schema.js';
import { schemaOf } from './schema-loader.js';

const FEATURE = 'feature-table';
const FIXTURE_DIR = fileURLToPath(new URL('./__fixtures__/function-table/', import.meta.url));
const NOTES_FILE = 'src/notes.server.ts';

let client: SqlClient;
let data: FeatureData;
let runner: IsolateRunner;
let ctx: ServerContext;

beforeAll(async () => {
  client = await openPglite(null);
  const model = modelSchema(FEATURE, schemaOf(schemaModule, 'server/schema.ts'));
  await migrate(client, model);
  data = new FeatureData(client, model);
  const manifest = { id: FEATURE, raw: {}, serverFunctions: { module: 'server-functions.js', exports: [] } };
  ctx = buildServerContext(
    hostedFeature(manifest, null, {}, data),
    'req-table',
    ANONYMOUS,
    new AbortController().signal,
  );
  for (const body of ['second', 'first']) await ctx.db.insert('notes', { body });
  // The isolates run the bundled copy of the handlers, as in dev and in a build.
  const bundle = await bundleHandlers(FIXTURE_DIR, [
    { absolute: path.join(FIXTURE_DIR, 'notes.server.ts'), handlers: [{ name: 'whereAmIIsolated', kind: 'query' }] },
  ]);
  runner = new IsolateRunner({ featureId: FEATURE, data: () => data, secrets: () => ({}) });
  runner.load(bundle.code, bundle.kinds);
});

afterAll(async () => {
  runner?.close();
  await client?.close();
});

/** A function table with the executors a feature has: declarative SQL, isolates, plain functions. */
function table(entries: () => ModuleEntry[] | Promise<ModuleEntry[]>, onError?: (file: string, error: Error) => void) {
  const executors = [new DeclarativeExecutor(FEATURE, () => data), new IsolateExecutor(runner), new ModuleExecutor()];
  return new FunctionTable('module', entries, executors, { onError });
}

/** Runs `name` as the host would; a result copied out of an isolate is parsed. */
async function call(functions: FunctionTable, name: string, args: unknown[] = []): Promise<unknown> {
  const invocation = await functions.resolve(name);
  if (!invocation) throw new Error(`${name} is not callable`);
  const result = await invocation(ctx, args);
  return result instanceof RawJson ? JSON.parse(result.json) : result;
}

/** The 503 `RequestError` that resolving `name` throws. */
async function unavailable(functions: FunctionTable, name: string): Promise<string> {
  let resolved: unknown;
  try {
    resolved = await functions.resolve(name);
  } catch (error) {
    expect(error).toBeInstanceOf(RequestError);
    expect((error as RequestError).status).toBe(503);
    return (error as RequestError).message;
  }
  throw new Error(`${name} resolved to ${typeof resolved} instead of failing with 503`);
}

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A promise and the function that resolves it. */
function gate(): { opened: Promise<void>; open: () => void } {
  let open = () => {};
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}

describe('the function table with the real executors', () => {
  it('hands each scanned export to the executor of its kind; a non-function export is not callable', async () => {
    const names = ['whereAmI', 'listNotes', 'whereAmIIsolated', 'pageSize'];
    const functions = table(() => [{ file: NOTES_FILE, exportNames: names, load: () => notesModule }]);
    await functions.reload();

    // A plain function runs in the host process, where Node's `process` exists.
    expect(await call(functions, 'whereAmI', ['a'])).toEqual({ label: 'a', process: 'object' });
    // The query handler runs in an isolate: no `process`, and its result comes back as JSON text.
    expect(await call(functions, 'whereAmIIsolated', ['b'])).toEqual({ label: 'b', process: 'undefined' });
    // The queryRows export is SQL against the feature's table.
    const page = (await call(functions, 'listNotes', [{}])) as { rows: { body: string }[]; nextCursor: string | null };
    expect(page.rows.map((row) => row.body)).toEqual(['first', 'second']);
    // Each invocation carries its kind, which the rate limits read.
    const kinds = await Promise.all(
      ['whereAmI', 'whereAmIIsolated', 'listNotes'].map(async (n) => (await functions.resolve(n))?.kind),
    );
    expect(kinds).toEqual(['plain', 'query', 'queryRows']);

    expect(notesModule.pageSize).toBe(20);
    expect(await functions.resolve('pageSize')).toBeUndefined();
    expect(functions.status()).toMatchObject({ exports: ['whereAmI', 'listNotes', 'whereAmIIsolated'], error: null });
    expect(Date.parse(functions.status().loadedAt ?? '')).toBeGreaterThan(0);
  });

  it('dispatches only by own export names of the scan: prototype names and unlisted exports are never callable', async () => {
    const prototypeNames = ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf'];
    // A namespace whose prototype has a function, as a hand-made or bundled namespace may.
    const inherited = Object.assign(Object.create({ inherited: () => 'from the prototype' }) as object, {
      own: () => 'own',
    });
    const functions = table(() => [
      { file: NOTES_FILE, exportNames: ['whereAmI', ...prototypeNames], load: () => notesModule },
      { file: 'src/inherited.server.ts', exportNames: ['own', 'inherited', ...prototypeNames], load: () => inherited },
    ]);
    await functions.reload();

    for (const name of [...prototypeNames, 'inherited']) expect(await functions.resolve(name), name).toBeUndefined();
    // `unlisted` is a function the module really exports, but the scan did not list it.
    expect(typeof notesModule.unlisted).toBe('function');
    expect(await functions.resolve('unlisted')).toBeUndefined();
    expect(await call(functions, 'own')).toBe('own');
    expect(await call(functions, 'whereAmI', ['x'])).toEqual({ label: 'x', process: 'object' });
    expect(functions.status().exports.sort()).toEqual(['own', 'whereAmI']);
  });

  it('a module that fails to load answers 503 naming the file for its names; other modules keep working', async () => {
    const reported: string[] = [];
    const functions = table(
      () => [
        { file: 'src/good.server.ts', exportNames: ['ok'], load: () => ({ ok: () => 'fine' }) },
        {
          file: 'src/broken.server.ts',
          exportNames: ['a', 'b'],
          load: () => {
            throw new SyntaxError('Unexpected token (3:7)');
          },
        },
      ],
      (file, error) => reported.push(`${file}: ${error.message}`),
    );
    await functions.reload();

    const message = `${contractText('unavailable')}: src/broken.server.ts failed to load: Unexpected token (3:7)`;
    expect(await unavailable(functions, 'a')).toBe(message);
    expect(await unavailable(functions, 'b')).toBe(message);
    expect(await call(functions, 'ok')).toBe('fine');
    // A name the broken module does not export is simply not exported.
    expect(await functions.resolve('c')).toBeUndefined();
    expect(functions.status()).toMatchObject({ exports: ['ok'], error: 'Unexpected token (3:7)' });
    expect(reported).toEqual(['src/broken.server.ts: Unexpected token (3:7)']);
  });

  it('a module whose scan failed may export any name: a missing name is 503 while it does not load', async () => {
    const functions = table(() => [
      {
        file: 'src/unscanned.server.ts',
        exportNames: null,
        load: () => {
          throw new Error('Cannot find module "./missing.js"');
        },
      },
    ]);
    await functions.reload();
    expect(await unavailable(functions, 'anything')).toMatch(
      /src\/unscanned\.server\.ts failed to load: Cannot find module/,
    );
  });

  it('a module that fails to reload keeps its last good version serving, and a fix recovers it', async () => {
    let version = 1;
    let broken = false;
    let names = ['getData'];
    const functions = table(() => [
      {
        file: 'src/api.server.ts',
        exportNames: names,
        load: () => {
          if (broken) throw new SyntaxError('Unexpected end of input');
          const loaded = version;
          return { getData: () => `v${loaded}`, added: () => 'added' };
        },
      },
    ]);
    await functions.reload();
    expect(await call(functions, 'getData')).toBe('v1');

    // A save adds an export and breaks the module at once.
    broken = true;
    version = 2;
    names = ['getData', 'added'];
    await functions.reload();
    expect(await call(functions, 'getData')).toBe('v1');
    expect(await unavailable(functions, 'added')).toBe(
      `${contractText('unavailable')}: src/api.server.ts failed to load: Unexpected end of input`,
    );
    expect(functions.status()).toMatchObject({ exports: ['getData'], error: 'Unexpected end of input' });

    broken = false;
    version = 3;
    await functions.reload();
    expect(await call(functions, 'getData')).toBe('v3');
    expect(await call(functions, 'added')).toBe('added');
    expect(functions.status().error).toBeNull();
  });

  it('a declarative export of an unknown table is reported at load and is 503 for that name only', async () => {
    const functions = table(() => [
      {
        file: NOTES_FILE,
        // `removed` was scanned but is gone from the namespace (a stale scan): simply not exported.
        exportNames: ['listGhosts', 'listNotes', 'hello', 'removed'],
        load: () => ({ listGhosts: queryRows('ghosts'), listNotes: queryRows('notes'), hello: () => 'hi' }),
      },
    ]);
    await functions.reload();

    const { error, exports } = functions.status();
    expect(error).toMatch(/^listGhosts\b.*: there is no table "ghosts" in server\/schema\.ts \(tables: notes\)$/);
    expect(exports.sort()).toEqual(['hello', 'listNotes']);
    expect(await unavailable(functions, 'listGhosts')).toBe(
      `${contractText('unavailable')}: ${NOTES_FILE} failed to load: ${error}`,
    );
    expect(await call(functions, 'hello')).toBe('hi');
    expect(await functions.resolve('removed')).toBeUndefined();
    const page = (await call(functions, 'listNotes', [{ limit: 1 }])) as { rows: { body: string }[] };
    expect(page.rows).toHaveLength(1);
  });

  it('runs reloads one after another: the second starts after the first and sees its result', async () => {
    const events: string[] = [];
    const seenAtStart: string[][] = [];
    let loads = 0;
    const functions: FunctionTable = table(async () => {
      const n = ++loads;
      events.push(`start ${n}`);
      seenAtStart.push(functions.status().exports);
      const name = `v${n}`;
      return [
        {
          file: 'src/api.server.ts',
          exportNames: [name],
          load: async () => {
            // The first load is the slow one: an interleaved second load would finish first.
            await delay(n === 1 ? 60 : 0);
            events.push(`loaded ${n}`);
            return { [name]: () => n };
          },
        },
      ];
    });

    const first = functions.reload();
    const second = functions.reload();
    await Promise.all([first, second]);

    expect(events).toEqual(['start 1', 'loaded 1', 'start 2', 'loaded 2']);
    expect(seenAtStart).toEqual([[], ['v1']]);
    expect(functions.status().exports).toEqual(['v2']);
  });

  it('calls wait for the first load and for a reload under way; calls already resolved keep the old code', async () => {
    let version = 1;
    let hold: Promise<void> = Promise.resolve();
    const functions = table(() => [
      {
        file: 'src/api.server.ts',
        exportNames: ['getData'],
        load: async () => {
          await hold;
          const loaded = version;
          return { getData: () => `v${loaded}` };
        },
      },
    ]);

    // Before the first load: the call waits for it instead of answering "not exported".
    const early = functions.resolve('getData');
    expect(early).toBeInstanceOf(Promise);
    await functions.reload();
    const v1 = (await early) as Invocation;
    expect(v1(ctx, [])).toBe('v1');

    const reload = gate();
    hold = reload.opened;
    version = 2;
    const reloading = functions.reload();
    const during = functions.resolve('getData');
    expect(during).toBeInstanceOf(Promise);
    let settled = false;
    void Promise.resolve(during).then(() => (settled = true));
    await delay(30);
    expect(settled).toBe(false);

    reload.open();
    await reloading;
    const v2 = (await during) as Invocation;
    expect(v2(ctx, [])).toBe('v2');
    expect(v1(ctx, [])).toBe('v1');
    // Once the reload is done, resolving answers at once again.
    expect(functions.resolve('getData')).not.toBeInstanceOf(Promise);
  });
});

describe('a module that never finishes loading', () => {
  it('counts as failed after the load timeout, so later loads and calls go on, and a fix recovers', async () => {
    let fixed = false;
    const hello = () => 'hi';
    const stuck = () => 'free';
    const table = new FunctionTable(
      'module',
      () => [
        { file: 'src/ok.server.ts', exportNames: ['hello'], load: () => ({ hello }) },
        // A top-level await that never settles, until the file is fixed.
        { file: 'src/hang.server.ts', exportNames: ['stuck'], load: () => (fixed ? { stuck } : new Promise(() => {})) },
      ],
      [new ModuleExecutor()],
      { loadTimeoutMs: 100 },
    );
    const started = performance.now();
    await table.reload();
    expect(performance.now() - started).toBeLessThan(2000);
    expect(table.resolve('hello')).toBeTypeOf('function');
    expect(() => table.resolve('stuck')).toThrow(
      'Server functions unavailable: src/hang.server.ts failed to load: src/hang.server.ts did not finish loading within 100 ms',
    );
    fixed = true;
    await table.reload();
    expect((table.resolve('stuck') as Invocation)(ctx, [])).toBe('free');
  });

  it('in production the 503 says only that the module failed; the reason goes to the log', async () => {
    const logged: string[] = [];
    const table = new FunctionTable(
      'module',
      () => [
        { file: 'server-functions.js', exportNames: ['listGhosts'], load: () => ({ listGhosts: queryRows('ghosts') }) },
      ],
      [new DeclarativeExecutor(FEATURE, () => data)],
      { detailedErrors: false, onError: (file, error) => logged.push(`${file}: ${error.message}`) },
    );
    await table.reload();
    const error = (() => {
      try {
        table.resolve('listGhosts');
      } catch (e) {
        return e as RequestError;
      }
      throw new Error('listGhosts resolved');
    })();
    expect([error.status, error.message]).toEqual([
      503,
      'Server functions unavailable: server-functions.js failed to load (the host logged why)',
    ]);
    expect(logged.join('\n')).toMatch(/there is no table "ghosts" in server\/schema\.ts/);
    // /_health is public too: it names the module, not the reason.
    expect(table.status().error).toBe('server-functions.js failed to load (the host logged why)');
  });
});
