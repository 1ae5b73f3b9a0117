/**
 * Where the CRUD bench's gap goes, without HTTP: the per-call cost of ways to run one of the
 * bench's statements on one in-memory PGlite (`openPglite(null)`, migrated and seeded like the
 * bench's servers). `node bench/crud/db-paths.js [query|list|insert] [calls]`.
 *
 * Calls are sequential; the variants interleave over 5 rounds and each prints its median wall and
 * CPU time per call, and how many times it enters PGlite's backend (`execProtocolRawSync`).
 * `client.statement` is the host's path for one statement (one message, built as the host builds
 * it). The variants after it are not what the project does: BEGIN and SET in one `exec`, and one
 * pipelined wire-protocol message built here (BEGIN, SET LOCAL ROLE, the statement and COMMIT;
 * then with `BEGIN READ ONLY`, without the role, without the transaction), to tell what each part
 * costs. They are only safe here because nothing else uses the database meanwhile.
 */
import { openPglite } from '../../dist/devserver/data/pglite-client.js';
import { setRoleSql } from '../../dist/devserver/data/sql-client.js';
import { migrate } from '../../dist/devserver/data/migrate.js';
import { FeatureData } from '../../dist/devserver/data/feature-data.js';
import { modelSchema } from '../../dist/devserver/data/table-model.js';
import { insertRow, queryRows } from '../../dist/runtime/declarative.js';
import { defineSchema, defineTable } from '../../dist/runtime/schema.js';
import { v } from '../../dist/runtime/validators.js';
import { median } from '../lib/stats.js';
import { SQL } from './targets.js';
import { QUERY_IDS, seedSql, WORKLOADS } from './workloads.js';

const workload = process.argv[2] ?? 'query';
const calls = Number(process.argv[3] ?? 1500);
if (!WORKLOADS.some((w) => w.name === workload))
  throw new Error(`Unknown workload "${workload}" (query, list, insert)`);

const model = modelSchema('feature-bench', defineSchema({ rules: defineTable({ text: v.string(), votes: v.int() }) }));
const client = await openPglite(null);
await migrate(client, model);
await client.adminTransaction((q) => q(seedSql(model.tables.get('rules').sql)));
const db = client.pglite;
const data = new FeatureData(client, model);
const role = model.role;
const readOnly = workload !== 'insert';
const fn = readOnly ? queryRows('rules') : insertRow('rules');

let next = 0;
/** The next call's client args and the statement the compiler makes of them. */
function nextCall() {
  if (workload === 'query') {
    const id = QUERY_IDS[next++ % QUERY_IDS.length];
    return { args: [{ where: { id: { eq: id } } }], text: SQL.byId, values: [id, 101] };
  }
  const args = JSON.parse(WORKLOADS.find((w) => w.name === workload).body).args;
  return workload === 'list'
    ? { args, text: SQL.byVotes, values: [500, 21] }
    : { args, text: SQL.insert, values: ['x', 1] };
}

/**
 * A variant that sends the next call's statement as one wire-protocol message, between `prefix`
 * and `suffix` (simple queries; `null`: none).
 *
 * @param {string | null} prefix
 * @param {string | null} suffix
 */
function oneMessage(prefix, suffix) {
  return async () => {
    const { text, values } = nextCall();
    const parts = [extendedQuery(text, values)];
    if (prefix) parts.unshift(simpleQuery(prefix));
    if (suffix) parts.push(simpleQuery(suffix));
    return rowsOf((await db.execProtocol(Buffer.concat(parts))).messages);
  };
}

/** @type {Record<string, () => Promise<unknown>>} */
const variants = {
  'db.query (bench `hono`)': async () => {
    const { text, values } = nextCall();
    return (await db.query(text, values)).rows;
  },
  'client.transaction(role) (bench `hono-tx`)': () => {
    const { text, values } = nextCall();
    return client.transaction(role, (q) => q(text, values), { readOnly });
  },
  'FeatureData.run (the host without HTTP)': () => data.run(fn, 'bench', /** @type {never} */ ({}), nextCall().args),
  "client.statement (the host's one message)": () => {
    const { text, values } = nextCall();
    return client.statement(role, text, values, { readOnly });
  },
  'db.transaction without SET: BEGIN, statement, COMMIT': () => {
    const { text, values } = nextCall();
    return db.transaction(async (tx) => (await tx.query(text, values)).rows);
  },
  'exec("BEGIN; SET ..."), db.query, exec("COMMIT")': async () => {
    const { text, values } = nextCall();
    await db.exec(`BEGIN; ${setRoleSql(role, readOnly)}`);
    try {
      return (await db.query(text, values)).rows;
    } finally {
      await db.exec('COMMIT');
    }
  },
  'one message: BEGIN, SET LOCAL ROLE, statement, COMMIT': oneMessage(`BEGIN; ${setRoleSql(role, readOnly)}`, 'COMMIT'),
  'one message with BEGIN READ ONLY': oneMessage(
    `BEGIN${readOnly ? ' READ ONLY' : ''}; SET LOCAL ROLE "${role}"`,
    'COMMIT',
  ),
  'one message without SET LOCAL ROLE': oneMessage(`BEGIN${readOnly ? ' READ ONLY' : ''}`, 'COMMIT'),
  'the statement alone (no transaction, no role)': oneMessage(null, null),
};

if (readOnly) {
  // The pipelined message returns what db.query returns.
  const plain = await variants['db.query (bench `hono`)']();
  next--;
  const piped = await variants['one message: BEGIN, SET LOCAL ROLE, statement, COMMIT']();
  if (JSON.stringify(piped) !== JSON.stringify(plain))
    throw new Error(`One message returned ${JSON.stringify(piped).slice(0, 200)}`);
}

// Times each variant enters the backend for one call.
const enter = db.execProtocolRawSync.bind(db);
let entries = 0;
db.execProtocolRawSync = (message) => {
  entries++;
  return enter(message);
};
/** @type {Record<string, number>} */
const entriesPerCall = {};
for (const [name, run] of Object.entries(variants)) {
  await run();
  entries = 0;
  await run();
  entriesPerCall[name] = entries;
}

for (const run of Object.values(variants)) for (let i = 0; i < 300; i++) await run();
/** @type {Record<string, { wall: number[], cpu: number[] }>} */
const times = Object.fromEntries(Object.keys(variants).map((name) => [name, { wall: [], cpu: [] }]));
for (let round = 0; round < 5; round++) {
  for (const [name, run] of Object.entries(variants)) {
    const cpu = process.cpuUsage();
    const started = performance.now();
    for (let i = 0; i < calls; i++) await run();
    const used = process.cpuUsage(cpu);
    times[name].wall.push(((performance.now() - started) * 1000) / calls);
    times[name].cpu.push((used.user + used.system) / calls);
  }
}
console.log(
  `${workload}: ${calls} sequential calls per variant and round, 5 rounds; median µs per call (wall / CPU), backend entries per call`,
);
for (const [name, t] of Object.entries(times)) {
  console.log(
    `${median(t.wall).toFixed(0).padStart(5)} / ${median(t.cpu).toFixed(0).padStart(5)} µs  ${String(entriesPerCall[name]).padStart(2)}  ${name}`,
  );
}
await client.close();

/** A wire-protocol message: type byte, length, body. */
function message(type, ...parts) {
  const body = Buffer.concat(parts);
  const head = Buffer.alloc(5);
  head.write(type, 0);
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

function cstring(text) {
  return Buffer.from(`${text}\0`);
}

function int16(n) {
  const b = Buffer.alloc(2);
  b.writeInt16BE(n);
  return b;
}

function int32(n) {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
}

/** Query (simple protocol). */
function simpleQuery(text) {
  return message('Q', cstring(text));
}

/** Parse, Bind (text parameters), Describe portal, Execute, Sync. */
function extendedQuery(text, values) {
  const params = values.flatMap((value) => {
    const bytes = Buffer.from(String(value));
    return [int32(bytes.length), bytes];
  });
  return Buffer.concat([
    message('P', cstring(''), cstring(text), int16(0)),
    message('B', cstring(''), cstring(''), int16(0), int16(values.length), ...params, int16(0)),
    message('D', Buffer.from('P'), cstring('')),
    message('E', cstring(''), int32(0)),
    message('S'),
  ]);
}

/** Rows from the backend messages, with PGlite's parsers (int8 as a number, timestamptz as a Date). */
function rowsOf(messages) {
  const description = messages.find((m) => m.name === 'rowDescription');
  const fields = description?.fields ?? [];
  const parse = fields.map((f) => db.parsers[f.dataTypeID] ?? ((x) => x));
  return messages
    .filter((m) => m.name === 'dataRow')
    .map((row) =>
      Object.fromEntries(
        fields.map((f, i) => [f.name, row.fields[i] === null ? null : parse[i](row.fields[i], f.dataTypeID)]),
      ),
    );
}
