/**
 * The hosts of the live bench, each run by `server-child.js` on 127.0.0.1 with a free port: the
 * host (`createHost`, production mode, no rate limiter) serving one feature with a `rules` table,
 * `latest = queryRows('rules')` and `addRule = insertRow('rules')`. Callers pick a dev identity with
 * the `x-favn-dev-identity` header (anonymous without it).
 *
 * - `pglite`: its own in-memory PGlite, migrated and seeded;
 * - `postgres-a`, `postgres-b`: the PostgreSQL database at `BENCH_LIVE_DATABASE_URL` (`a` migrates
 *   and seeds it, so start it first), sharing change events through LISTEN/NOTIFY as `favn serve`
 *   does with DATABASE_URL.
 *
 * `GET /_bench/commits` answers (and forgets) the times of the commits of the feature's data on this
 * host, in ms of the monotonic clock (`process.hrtime`, the same in every process of the machine),
 * with the host's live stats and how late its event loop ran timers meanwhile (ms: p50, p99, max).
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { serve } from '@hono/node-server';
import { devIdentity } from '../../dist/devserver/auth/dev-identity.js';
import { FeatureData } from '../../dist/devserver/data/feature-data.js';
import { migrate } from '../../dist/devserver/data/migrate.js';
import { openPglite } from '../../dist/devserver/data/pglite-client.js';
import { openPostgres } from '../../dist/devserver/data/postgres-client.js';
import { modelSchema } from '../../dist/devserver/data/table-model.js';
import {
  createHost,
  DeclarativeExecutor,
  FunctionTable,
  hostedFeature,
  parseManifest,
} from '../../dist/devserver/index.js';
import { listenForChanges } from '../../dist/devserver/live/postgres-changes.js';
import { insertRow, queryRows } from '../../dist/runtime/declarative.js';
import { defineSchema, defineTable } from '../../dist/runtime/schema.js';
import { v } from '../../dist/runtime/validators.js';
import { seedSql } from '../crud/workloads.js';

export const FEATURE_ID = 'feature-bench-live';

/** Readiness call: a filter no row matches, so every host answers the same bytes. */
export const RPC_PATH = `/rpc/${FEATURE_ID}/latest`;
export const RPC_BODY = JSON.stringify({ args: [{ where: { text: { eq: 'none' } }, limit: 1 }] });
export const RPC_RESPONSE = JSON.stringify({ rows: [], nextCursor: null });

/** Where the commit times are read. */
export const COMMITS_PATH = '/_bench/commits';

const SCHEMA = defineSchema({ rules: defineTable({ text: v.string(), votes: v.int() }) });
const MODEL = modelSchema(FEATURE_ID, SCHEMA);

/** @type {Record<string, () => Promise<{ port: number, close: () => Promise<void> }>>} */
export const targets = {
  pglite: async () => {
    const client = await openPglite(null);
    await prepare(client, true);
    return serveHost(client, null);
  },
  'postgres-a': async () => startOnPostgres(true),
  'postgres-b': async () => startOnPostgres(false),
};

/** Milliseconds of the machine's monotonic clock. */
export function now() {
  return Number(process.hrtime.bigint()) / 1e6;
}

async function startOnPostgres(seed) {
  const url = process.env.BENCH_LIVE_DATABASE_URL;
  if (!url) throw new Error('BENCH_LIVE_DATABASE_URL is not set');
  const client = await openPostgres(url);
  await prepare(client, seed);
  return serveHost(client, url);
}

/** Migrates; with `seed`, adds the seed rows (1,000, older than any row the bench writes). */
async function prepare(client, seed) {
  await migrate(client, MODEL);
  if (seed) await client.adminTransaction((q) => q(seedSql(MODEL.tables.get('rules').sql)));
}

/**
 * @param {import('../../dist/devserver/data/sql-client.js').SqlClient} client
 * @param {string | null} databaseUrl shares change events through this database when set
 */
async function serveHost(client, databaseUrl) {
  const data = new FeatureData(client, MODEL);
  const commits = [];
  data.onCommit(() => commits.push(now()));
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  const loopDelay = () => {
    const ms = { p50: loop.percentile(50) / 1e6, p99: loop.percentile(99) / 1e6, max: loop.max / 1e6 };
    loop.reset();
    return ms;
  };
  const latest = queryRows('rules');
  const addRule = insertRow('rules');
  const exports = ['latest', 'addRule'];
  const manifest = parseManifest(
    JSON.stringify({ id: FEATURE_ID, serverFunctions: { module: 'server-functions.js', exports } }),
    'feature.json',
  );
  const entries = () => [{ file: 'rules.server.js', exportNames: exports, load: () => ({ latest, addRule }) }];
  const functions = new FunctionTable('module', entries, [new DeclarativeExecutor(FEATURE_ID, () => data)]);
  await functions.reload();
  const host = createHost([hostedFeature(manifest, functions, {}, data)], {
    dev: false,
    logCall: null,
    identify: devIdentity,
    before(app) {
      app.get(COMMITS_PATH, (c) => c.json({ times: commits.splice(0), stats: host.live.stats(), loop: loopDelay() }));
    },
  });
  if (databaseUrl) host.live.bridge(await listenForChanges(databaseUrl, (event) => host.live.remote(event)));
  return new Promise((resolve, reject) => {
    const server = serve({ fetch: host.app.fetch, port: 0, hostname: '127.0.0.1' }, (info) => {
      resolve({
        port: info.port,
        close: async () => {
          await host.live.shutdown();
          server.closeAllConnections?.();
          await new Promise((done) => server.close(() => done()));
          await client.close();
        },
      });
    });
    server.once('error', reject);
  });
}
