/**
 * The four servers the CRUD bench compares, each started on 127.0.0.1 with a free port and its
 * own in-memory PGlite holding the same schema (migrated by `migrate`) and the same seed rows:
 *
 * - `hono`: a bare Hono app whose routes run the SQL the compiler produces, hand-written with
 *   bound parameters, directly on the PGlite instance (`client.pglite.query`: one statement, no
 *   explicit transaction, the connecting user's role);
 * - `hono-tx`: the same app running each statement through the project's `SqlClient`
 *   (`transaction(role, ...)`: BEGIN, `SET TRANSACTION READ ONLY` for reads, `SET LOCAL ROLE`, the
 *   statement, COMMIT), as the host did before it sent one message per statement;
 * - `hono-stmt`: the same app running each statement with the project's `SqlClient.statement`,
 *   the one wire-protocol message the host sends for a declarative call (BEGIN, the role, the
 *   statement and COMMIT): the parts of the host's path with none of its own code around them;
 * - `host`: the host (`createHost`) serving `listRules = queryRows('rules')` and
 *   `addRule = insertRow('rules')` through its RPC route.
 *
 * Run by `bench/lib/server-child.js`, which waits until `RPC_PATH` answers `RPC_BODY` with
 * `RPC_RESPONSE` (the same bytes from every target).
 */
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { openPglite } from '../../dist/devserver/data/pglite-client.js';
import { migrate } from '../../dist/devserver/data/migrate.js';
import {
  createHost,
  DeclarativeExecutor,
  FunctionTable,
  hostedFeature,
  parseManifest,
} from '../../dist/devserver/index.js';
import { FeatureData } from '../../dist/devserver/data/feature-data.js';
import { modelSchema } from '../../dist/devserver/data/table-model.js';
import { insertRow, queryRows } from '../../dist/runtime/declarative.js';
import { defineSchema, defineTable } from '../../dist/runtime/schema.js';
import { v } from '../../dist/runtime/validators.js';
import { rowId, rpcBody, seedRow, seedSql } from './workloads.js';

/** Path, body and answer of the readiness call: row 1 by primary key. */
export const RPC_PATH = '/rpc/feature-bench/listRules';
export const RPC_BODY = rpcBody([{ where: { id: { eq: rowId(1) } } }]);
export const RPC_RESPONSE = JSON.stringify({ rows: [seedRow(1)], nextCursor: null });

const HOSTNAME = '127.0.0.1';
const FEATURE_ID = 'feature-bench';
const SCHEMA = defineSchema({ rules: defineTable({ text: v.string(), votes: v.int() }) });
const MODEL = modelSchema(FEATURE_ID, SCHEMA);
const RULES = MODEL.tables.get('rules').sql;

/**
 * The statements the compiler produces for the bench's calls (`FeatureData.compile(...).prepare`),
 * written out. `queryRows` asks for one row more than the limit to tell whether a page follows.
 */
export const SQL = {
  byId: `SELECT * FROM ${RULES} WHERE "id" = $1 ORDER BY "createdAt" DESC, "id" DESC LIMIT $2`,
  byVotes: `SELECT * FROM ${RULES} WHERE "votes" >= $1 ORDER BY "votes" DESC, "id" DESC LIMIT $2`,
  insert: `INSERT INTO ${RULES} ("text", "votes") VALUES ($1, $2) RETURNING *`,
};

/**
 * Fails if the compiler no longer produces `SQL` for the bench's calls, so the baselines never
 * drift from what the host runs.
 *
 * @param {import('../../dist/devserver/data/sql-client.js').SqlClient} client
 */
function checkCompiledSql(client) {
  const data = new FeatureData(client, MODEL);
  const compiled = [
    [SQL.byId, queryRows('rules'), [{ where: { id: { eq: rowId(1) } } }]],
    [
      SQL.byVotes,
      queryRows('rules'),
      [{ where: { votes: { gte: 500 } }, orderBy: { column: 'votes', direction: 'desc' }, limit: 20 }],
    ],
    [SQL.insert, insertRow('rules'), [{ text: 'x', votes: 1 }]],
  ];
  for (const [text, fn, args] of compiled) {
    const actual = data.compile(fn, 'bench').prepare(args, /** @type {never} */ ({})).text;
    if (actual !== text)
      throw new Error(`The compiler now produces\n  ${actual}\nwhere the bench hand-writes\n  ${text}`);
  }
}

/** @typedef {{ port: number, close: () => Promise<void> }} Running */
/** @typedef {(text: string, values: unknown[], readOnly: boolean) => Promise<Record<string, unknown>[]>} RunSql */

/** @type {Record<string, () => Promise<Running>>} */
export const targets = {
  hono: async () => {
    const client = await seededClient();
    checkCompiledSql(client);
    const db = client.pglite;
    return serveFetch(handWrittenApp(async (text, values) => (await db.query(text, values)).rows).fetch);
  },
  'hono-tx': async () => {
    const client = await seededClient();
    checkCompiledSql(client);
    return serveFetch(
      handWrittenApp((text, values, readOnly) => client.transaction(MODEL.role, (q) => q(text, values), { readOnly }))
        .fetch,
    );
  },
  'hono-stmt': async () => serveFetch(stmtApp(await seededClient()).fetch),
  host: async () => serveFetch((await benchHost()).app.fetch),
};

/**
 * The host serving the declarative exports from an in-process module.
 *
 * @param {import('../../dist/devserver/data/sql-client.js').SqlClient} [given] a seeded client; a new one by default
 */
export async function benchHost(given) {
  const client = given ?? (await seededClient());
  const data = new FeatureData(client, MODEL);
  const listRules = queryRows('rules');
  const addRule = insertRow('rules');
  const exports = ['listRules', 'addRule'];
  const manifest = parseManifest(
    JSON.stringify({ id: FEATURE_ID, serverFunctions: { module: 'server-functions.js', exports } }),
    'feature.json',
  );
  // The seeded client and its model, so the bench measures calls and not a migration.
  const entries = () => [{ file: 'rules.server.js', exportNames: exports, load: () => ({ listRules, addRule }) }];
  const functions = new FunctionTable('module', entries, [new DeclarativeExecutor(FEATURE_ID, () => data)]);
  await functions.reload();
  return createHost([hostedFeature(manifest, functions, {}, data)], { dev: false, logCall: null });
}

/**
 * The `hono-stmt` routes on `client`: each statement sent as the host's one message
 * (`SqlClient.statement`), after checking that the compiler still produces the hand-written SQL.
 *
 * @param {import('../../dist/devserver/data/sql-client.js').SqlClient} client a seeded client
 */
export function stmtApp(client) {
  checkCompiledSql(client);
  return handWrittenApp((text, values, readOnly) => client.statement(MODEL.role, text, values, { readOnly }));
}

/**
 * Hand-written routes for the bench's calls: read the body, bind the values, run the statement,
 * shape the rows as the host does (`{ rows, nextCursor }` for a list, the row for an insert).
 *
 * @param {RunSql} run
 */
function handWrittenApp(run) {
  const app = new Hono();
  app.post(`/rpc/${FEATURE_ID}/listRules`, async (c) => {
    const { args } = await c.req.json();
    const { where, orderBy, limit = 100 } = args[0];
    if (where.id !== undefined) {
      const rows = await run(SQL.byId, [where.id.eq, limit + 1], true);
      return c.json(page(rows, limit, 'createdAt'));
    }
    if (orderBy?.column !== 'votes' || orderBy.direction !== 'desc') return c.json({ error: 'unsupported order' }, 400);
    const rows = await run(SQL.byVotes, [where.votes.gte, limit + 1], true);
    return c.json(page(rows, limit, 'votes'));
  });
  app.post(`/rpc/${FEATURE_ID}/addRule`, async (c) => {
    const { args } = await c.req.json();
    const { text, votes } = args[0];
    if (typeof text !== 'string' || !Number.isInteger(votes)) return c.json({ error: 'invalid rule' }, 422);
    const [row] = await run(SQL.insert, [text, votes], false);
    return c.json(clientRow(row));
  });
  return app;
}

/**
 * One page of rows and the keyset cursor of the next, in the host's format.
 *
 * @param {Record<string, unknown>[]} rows up to `limit + 1` rows
 * @param {number} limit
 * @param {string} orderColumn
 */
function page(rows, limit, orderColumn) {
  const last = rows.length > limit ? rows[limit - 1] : undefined;
  const value = last?.[orderColumn] instanceof Date ? last[orderColumn].toISOString() : last?.[orderColumn];
  return {
    rows: rows.slice(0, limit).map(clientRow),
    nextCursor: last ? Buffer.from(JSON.stringify([value, last.id])).toString('base64url') : null,
  };
}

/** A row with `createdAt` as an ISO string. */
function clientRow(row) {
  return row.createdAt instanceof Date ? { ...row, createdAt: row.createdAt.toISOString() } : row;
}

/** `openPglite(null)` (what the host uses), migrated and seeded; `.pglite` is its PGlite instance. */
export async function seededClient() {
  const client = await openPglite(null);
  await migrate(client, MODEL);
  await client.adminTransaction((q) => q(seedSql(RULES)));
  return client;
}

/**
 * Serves a fetch handler with `@hono/node-server`.
 *
 * @param {(request: Request) => Response | Promise<Response>} fetch
 * @returns {Promise<Running>}
 */
function serveFetch(fetch) {
  return new Promise((resolve, reject) => {
    const server = serve({ fetch, port: 0, hostname: HOSTNAME }, (info) => {
      resolve({ port: info.port, close: () => new Promise((done) => server.close(() => done())) });
    });
    server.once('error', reject);
  });
}
