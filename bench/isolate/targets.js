/**
 * The server the isolate bench measures: the host (`createHost`) serving the built feature of
 * `isolate/feature/` (its `dist-server/`, written by `vite build` before the server starts) as
 * `loadBuiltFeature` loads it, with an in-memory PGlite (`openPglite(null)`), on 127.0.0.1 with a
 * free port. Handlers run in the feature's isolates, plain functions in this process.
 *
 * `bare`, the floor of the same two calls through HTTP: a bare Hono app on `@hono/node-server` whose
 * `trivialPlain` route answers the trivial value itself and whose `trivialHandler` route gets it from
 * a function in a bare isolate with `Reference.apply` (a pool of `maxIsolates` isolates, a call
 * waiting for a free one, as the host's pool does), with no code of the host around either: what
 * HTTP plus isolated-vm alone cost.
 *
 * Run by `bench/lib/server-child.js` (started with `--no-node-snapshot`, which isolated-vm needs),
 * which waits until `RPC_PATH` answers `RPC_BODY` with `RPC_RESPONSE`.
 */
import { fileURLToPath } from 'node:url';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { isolatedVm } from '../../dist/devserver/isolate/isolated-vm.js';
import { DEFAULT_LIMITS } from '../../dist/devserver/isolate/limits.js';
import { loadBuiltFeature } from '../../dist/devserver/feature/load-built-feature.js';
import { openPglite } from '../../dist/devserver/data/pglite-client.js';
import { createHost } from '../../dist/devserver/host/host.js';

/** Id of the bench feature (`isolate/feature/feature.json`). */
export const FEATURE_ID = 'feature-isolate-bench';
/** Folder of the bench feature, where `vite build` runs. */
export const FEATURE_DIR = fileURLToPath(new URL('./feature/', import.meta.url));
/** Its build output, which the server loads. */
export const DIST_SERVER_DIR = fileURLToPath(new URL('./feature/dist-server/', import.meta.url));

/** Readiness call: the plain trivial function (needs no isolate and no rows). */
export const RPC_PATH = `/rpc/${FEATURE_ID}/trivialPlain`;
export const RPC_BODY = JSON.stringify({ args: [] });
export const RPC_RESPONSE = JSON.stringify({ ok: true, n: 1 });

const HOSTNAME = '127.0.0.1';

/** @typedef {{ port: number, close: () => Promise<void> }} Running */

/** @type {Record<string, () => Promise<Running>>} */
export const targets = {
  host: startHost,
  bare: startBare,
};

/** The host serving the built feature. */
async function startHost() {
  const database = await openPglite(null);
  const feature = await loadBuiltFeature(DIST_SERVER_DIR, { database });
  if (feature.unavailableReason) throw new Error(`The bench feature is unavailable: ${feature.unavailableReason}`);
  const host = createHost([feature], { logCall: null });
  return listen(host.app.fetch, async () => {
    feature.close?.();
    await database.close();
  });
}

/** The bare floor: a Hono route answering directly, and one calling a bare isolate's function. */
async function startBare() {
  const ivm = isolatedVm();
  const isolates = Array.from(
    { length: DEFAULT_LIMITS.maxIsolates },
    () => new ivm.Isolate({ memoryLimit: DEFAULT_LIMITS.memoryLimitMb }),
  );
  const source = `(function (args) { return JSON.stringify({ ok: true, n: JSON.parse(args).length + 1 }); })`;
  const free = await Promise.all(
    isolates.map(async (isolate) => (await isolate.createContext()).eval(source, { reference: true })),
  );
  /** @type {((fn: (typeof free)[number]) => void)[]} */
  const waiting = [];
  /** @param {string} args JSON of the call's arguments */
  const callIsolate = async (args) => {
    const fn = free.pop() ?? (await new Promise((resolve) => waiting.push(resolve)));
    try {
      return /** @type {string} */ (await fn.apply(undefined, [args], { timeout: DEFAULT_LIMITS.cpuLimitMs }));
    } finally {
      const next = waiting.shift();
      if (next) next(fn);
      else free.push(fn);
    }
  };
  const json = { 'content-type': 'application/json' };
  const app = new Hono();
  app.post(`/rpc/${FEATURE_ID}/trivialPlain`, async (c) => {
    const { args } = await c.req.json();
    return c.body(JSON.stringify({ ok: true, n: args.length + 1 }), 200, json);
  });
  app.post(`/rpc/${FEATURE_ID}/trivialHandler`, async (c) => {
    const { args } = await c.req.json();
    return c.body(await callIsolate(JSON.stringify(args)), 200, json);
  });
  return listen(app.fetch, async () => {
    for (const isolate of isolates) isolate.dispose();
  });
}

/**
 * Serves `fetch` on 127.0.0.1 with a free port; `cleanup` runs after the server closed.
 *
 * @param {(request: Request) => Response | Promise<Response>} fetch
 * @param {() => Promise<void>} cleanup
 * @returns {Promise<Running>}
 */
function listen(fetch, cleanup) {
  return new Promise((resolve, reject) => {
    const server = serve({ fetch, port: 0, hostname: HOSTNAME }, (info) => {
      resolve({
        port: info.port,
        close: async () => {
          await new Promise((done) => server.close(() => done()));
          await cleanup();
        },
      });
    });
    server.once('error', reject);
  });
}
