/**
 * What the CRUD bench sends and what every target holds: the seed rows (deterministic, so every
 * server process has the same rows and answers byte for byte alike) and the three workloads.
 */

/** Rows in `rules` before any measurement. */
export const SEED_ROWS = 1000;

/** Ids the query workload cycles through (rows 100..999: equal-length JSON bodies). */
export const QUERY_IDS = Array.from({ length: 900 }, (_, i) => rowId(100 + i));

/**
 * The `id` of seed row `i` (1-based), a version-4-shaped UUID.
 *
 * @param {number} i
 */
export function rowId(i) {
  return `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
}

/**
 * Seed row `i` as a client receives it.
 *
 * @param {number} i
 */
export function seedRow(i) {
  return {
    id: rowId(i),
    createdAt: new Date(Date.UTC(2026, 0, 1) + i * 1000).toISOString(),
    text: `rule ${i}`,
    votes: (i * 37) % 1000,
  };
}

/**
 * The same rows as one statement (`createdAt` 2026-01-01 + i seconds, votes a permutation of
 * 0..999, so half of the rows have votes >= 500).
 *
 * @param {string} table quoted table name
 */
export function seedSql(table) {
  return (
    `INSERT INTO ${table} ("id", "createdAt", "text", "votes") ` +
    `SELECT ('00000000-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid, timestamptz '2026-01-01T00:00:00Z' + i * interval '1 second', 'rule ' || i, (i * 37) % 1000 ` +
    `FROM generate_series(1, ${SEED_ROWS}) AS i`
  );
}

/**
 * Request body of a call.
 *
 * @param {unknown[]} args
 */
export function rpcBody(args) {
  return JSON.stringify({ args });
}

/**
 * @typedef {object} Workload
 * @property {string} name
 * @property {string} path RPC route every target serves
 * @property {string} body first (or only) request body
 * @property {string[] | undefined} bodies bodies sent in turn, when they vary
 * @property {string} describe
 */

/** @type {Workload[]} */
export const WORKLOADS = [
  {
    name: 'query',
    path: '/rpc/feature-bench/listRules',
    body: rpcBody([{ where: { id: { eq: QUERY_IDS[0] } } }]),
    bodies: QUERY_IDS.map((id) => rpcBody([{ where: { id: { eq: id } } }])),
    describe: `listRules by primary key, ${QUERY_IDS.length} ids in turn`,
  },
  {
    name: 'list',
    path: '/rpc/feature-bench/listRules',
    body: rpcBody([{ where: { votes: { gte: 500 } }, orderBy: { column: 'votes', direction: 'desc' }, limit: 20 }]),
    bodies: undefined,
    describe: 'listRules votes >= 500, votes desc, limit 20',
  },
  {
    name: 'insert',
    path: '/rpc/feature-bench/addRule',
    body: rpcBody([{ text: 'x', votes: 1 }]),
    bodies: undefined,
    describe: 'addRule { text: "x", votes: 1 }',
  },
];

/**
 * An answer in the form targets must agree on: byte for byte for the reads; for an insert, apart
 * from the new row's `id` and `createdAt`.
 *
 * @param {Workload} workload
 * @param {string} answer response body
 */
export function comparableAnswer(workload, answer) {
  return workload.name === 'insert' ? JSON.stringify({ ...JSON.parse(answer), id: null, createdAt: null }) : answer;
}
