/**
 * The server the isolate bench measures: the host (`createHost`) serving the built feature of
 * `isolate/feature/` (its `dist-server/`, written by `vite build` before the server starts) as
 * `loadBuiltFeature` loads it, with an in-memory PGlite (`openPglite(null)`), on 127.0.0.1 with a
 * free port. Handlers run in the feature's isolates, plain functions in this process.
 *
 * Run by `bench/lib/server-child.js` (started with `--no-node-snapshot`, which isolated-vm needs),
 * which waits until `RPC_PATH` answers `RPC_BODY` with `RPC_RESPONSE`.
 */
import { fileURLToPath } from 'node:url';
import { serve } from '@hono/node-server';
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
};

/** The host serving the built feature. */
async function startHost() {
  const database = await openPglite(null);
  const feature = await loadBuiltFeature(DIST_SERVER_DIR, { database });
  if (feature.unavailableReason) throw new Error(`The bench feature is unavailable: ${feature.unavailableReason}`);
  const host = createHost([feature], { logCall: null });
  return new Promise((resolve, reject) => {
    const server = serve({ fetch: host.app.fetch, port: 0, hostname: HOSTNAME }, (info) => {
      resolve({
        port: info.port,
        close: async () => {
          await new Promise((done) => server.close(() => done()));
          feature.close?.();
          await database.close();
        },
      });
    });
    server.once('error', reject);
  });
}
