/**
 * Isolate bench: what running a server function as a `query` handler in an isolate costs against
 * running the same work as a plain function in the host process. Both are served by one host
 * through the same route (`POST /rpc/{featureId}/{fnName}`), from a feature built with the real
 * `vite build` (`isolate/feature/`, served by `isolate/targets.js`). Three workloads:
 *
 * - `trivial`: a constant small object, 16 requests in flight (throughput);
 * - `db`: one `ctx.db.get('items', id)` over the seeded rows' ids in turn, 16 in flight;
 * - `trivial-c1`: the trivial call again, one request in flight: its p50 latency is the per-call
 *   cost without queueing.
 *
 * Per workload, an unmeasured settling pass per path, then rounds interleaving the two paths (the
 * order alternates from round to round); a path's figures are the medians over its rounds.
 * `overhead_us` is the host process's CPU time per trivial call in an isolate minus per trivial
 * plain call (its CPU time, all threads, over each measurement divided by the calls sent), at 16 in
 * flight; `overhead_c1_us` the same at one in flight. `apply_floor_us` is what isolated-vm alone
 * costs per call (`lib/isolate-floor.js`: a bare `Reference.apply` of a function returning a
 * string, the hand-off to the isolate's thread and back), `apply_sync_floor_us` the same on the
 * calling thread (`applySync`, which would block the host's event loop while handler code runs),
 * `apply_busy_floor_us` the bare calls at the throughput workload's 16 in flight over 8 isolates
 * (the floor under `overhead_us`; `apply_floor_us` is the one under `overhead_c1_us`).
 *
 * The same trivial calls through HTTP with no host code, in the same rounds (`bare-isolate` and
 * `bare-plain`, `isolate/targets.js` `bare`: a bare Hono route calling a bare isolate's function with
 * `Reference.apply`, and one answering directly, in a process of their own): `http_floor_us` and
 * `http_floor_c1_us` are that process's CPU per call through the isolate minus per direct call, at
 * 16 and at one in flight, the floors under `overhead_us` and `overhead_c1_us` with HTTP included.
 * The last line printed is one JSON object.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, measure, measureQuietly } from './lib/measure.js';
import { startServer } from './lib/processes.js';
import { median, round } from './lib/stats.js';
import { machine } from './lib/system.js';
import { FEATURE_DIR, FEATURE_ID } from './isolate/targets.js';
import { DEFAULT_LIMITS } from '../dist/devserver/isolate/limits.js';

/** Measurement settings (loopback only). */
export const SETTINGS = {
  rounds: 5,
  concurrency: 16,
  latencyConcurrency: 1,
  seedRows: 300,
  settleMs: 1_500,
  warmupMs: 500,
  durationMs: 2_500,
  retries: 4,
};

/** Goals the results are reported against (not asserted). */
const TARGETS = { trivial_ratio: 0.85, db_ratio: 0.9, p50_overhead_ms: 0.15 };

/** The two ways to run the same work; per workload, the function name of each. */
const PATHS = ['isolate', 'plain'];
/** The trivial calls' floor: the same two calls on the bare server (`bare-isolate` runs `trivialHandler`). */
const BARE_PATHS = ['bare-isolate', 'bare-plain'];
const FUNCTIONS = {
  trivial: { isolate: 'trivialHandler', plain: 'trivialPlain' },
  db: { isolate: 'getItemHandler', plain: 'getItemPlain' },
};
/** Rows per `seedItems` call, well within a handler call's deadline. */
const SEED_BATCH = 100;

const VITE_BIN = fileURLToPath(new URL('../node_modules/vite/bin/vite.js', import.meta.url));
/** Lets the load generator send a workload's `bodies` in turn (see `crud/rotate-bodies.js`). */
const ROTATE_BODIES = `--import=${new URL('./crud/rotate-bodies.js', import.meta.url).href}`;
/** isolated-vm needs it in every process that creates isolates (Node 20+). */
const NO_NODE_SNAPSHOT = '--no-node-snapshot';

/**
 * @typedef {object} Workload
 * @property {string} name
 * @property {keyof typeof FUNCTIONS} fns
 * @property {number} concurrency
 * @property {string} body first (or only) request body
 * @property {string[] | undefined} bodies bodies sent in turn, when they vary
 * @property {boolean} bare whether the bare server's paths are measured too
 */

/** Runs the bench and prints its lines. */
export async function run() {
  const { rounds, concurrency, latencyConcurrency, seedRows, settleMs, warmupMs, durationMs, retries } = SETTINGS;
  const rpcPath = (fn) => `/rpc/${FEATURE_ID}/${fn}`;
  console.log(`isolate: trivial POST ${rpcPath('trivialHandler')} vs ${rpcPath('trivialPlain')}  {"args":[]}`);
  console.log(
    `isolate: db      POST ${rpcPath('getItemHandler')} vs ${rpcPath('getItemPlain')}  {"args":["<id>"]}, ${seedRows} ids in turn`,
  );
  console.log(`isolate: ${machine()}`);
  const built = await buildFeature();
  console.log(`isolate: vite build of the bench feature in ${Math.round(built)} ms`);
  console.log(
    `isolate: one host process (in-memory PGlite, ${seedRows} rows), both paths; per workload ${rounds} rounds of ${warmupMs} ms warm-up + ${durationMs} ms measurement per path; ` +
      `throughput at ${concurrency} requests in flight, latency at ${latencyConcurrency}`,
  );

  /** @type {import('./lib/processes.js').ServerProcess[]} */
  const servers = [];
  const nodeOptions = process.env.NODE_OPTIONS;
  const setNodeOptions = (extra) => (process.env.NODE_OPTIONS = [nodeOptions, extra].filter(Boolean).join(' '));
  try {
    // One process serves both paths, as the host does in production: the two paths share the
    // HTTP stack, the JIT, the heap and the PGlite instance, so the comparison differs only in
    // where the function runs. Two processes would add process-to-process variance (core
    // placement, heap layout) of about the size of the effect measured.
    setNodeOptions(NO_NODE_SNAPSHOT);
    servers.push(await startServer('isolate/targets.js', 'host'));
    servers.push(await startServer('isolate/targets.js', 'bare'));
    const [server, bare] = servers;
    const ids = await seed(server, seedRows);
    /** @type {Workload[]} */
    const workloads = [
      { name: 'trivial', fns: 'trivial', concurrency, body: rpcBody([]), bodies: undefined, bare: true },
      {
        name: 'db',
        fns: 'db',
        concurrency,
        body: rpcBody([ids[0]]),
        bodies: ids.map((id) => rpcBody([id])),
        bare: false,
      },
      {
        name: 'trivial-c1',
        fns: 'trivial',
        concurrency: latencyConcurrency,
        body: rpcBody([]),
        bodies: undefined,
        bare: true,
      },
    ];
    await checkSameAnswers(server, bare, ids);
    // Only the load generators start from here on; the preload acts only on a config with `bodies`.
    setNodeOptions(ROTATE_BODIES);
    // Measurements disturbed by other processes are repeated, at most `retries` times in all.
    const budget = { retries };
    /** @type {Record<string, Record<string, import('./lib/measure.js').Measurement>>} */
    const summary = {};
    for (const workload of workloads) {
      const paths = workload.bare ? [...PATHS, ...BARE_PATHS] : PATHS;
      const serverOf = (path) => (BARE_PATHS.includes(path) ? bare : server);
      const load = (path) => ({
        path: rpcPath(FUNCTIONS[workload.fns][path.replace('bare-', '')]),
        body: workload.body,
        bodies: workload.bodies,
        concurrency: workload.concurrency,
      });
      // Unmeasured: warms the JIT, the isolates and PGlite on this workload.
      for (const path of paths) await measure(serverOf(path), { ...load(path), warmupMs: 0, durationMs: settleMs });
      /** @type {Record<string, import('./lib/measure.js').Measurement[]>} */
      const results = Object.fromEntries(paths.map((p) => [p, []]));
      for (let r = 1; r <= rounds; r++) {
        // Alternating the order cancels a drift within a round (e.g. a GC after the first run).
        for (const path of r % 2 ? paths : [...paths].reverse()) {
          const left = budget.retries;
          const m = await measureQuietly(serverOf(path), { ...load(path), warmupMs, durationMs }, budget);
          results[path].push(m);
          const repeats = left - budget.retries;
          console.log(
            `  ${workload.name.padEnd(10)} round ${r} ${path.padEnd(12)} ${describe(m)}${repeats ? `  (best of ${repeats + 1}: other load)` : ''}`,
          );
        }
      }
      summary[workload.name] = Object.fromEntries(paths.map((p) => [p, medians(results[p])]));
      for (const p of paths)
        console.log(`${workload.name.padEnd(10)} ${p.padEnd(12)} median  ${describe(summary[workload.name][p])}`);
    }
    const floor = await measureFloor();
    const line = { ...resultLine(summary), ...floor };
    console.log(
      `isolate: floor, isolated-vm alone: host CPU per Reference.apply ${floor.apply_floor_us} µs one at a time, ` +
        `${floor.apply_busy_floor_us} µs at ${concurrency} in flight over ${DEFAULT_LIMITS.maxIsolates} isolates ` +
        `(applySync ${floor.apply_sync_floor_us} µs)`,
    );
    console.log(
      `isolate: floor through HTTP, a bare Hono route and a bare isolate: CPU per call through the isolate - direct = ` +
        `${line.http_floor_us} µs at ${concurrency} in flight, ${line.http_floor_c1_us} µs at one in flight`,
    );
    console.log(
      `isolate: trivial_ratio ${line.trivial_ratio} (target >= ${TARGETS.trivial_ratio}), db_ratio ${line.db_ratio} (target >= ${TARGETS.db_ratio}), ` +
        `p50_overhead_ms ${line.p50_overhead_ms} (target <= ${TARGETS.p50_overhead_ms}), ` +
        `host CPU per trivial call: isolate - plain = ${line.overhead_us} µs (${line.overhead_c1_us} µs at one in flight)`,
    );
    console.log(JSON.stringify(line));
  } finally {
    if (nodeOptions === undefined) delete process.env.NODE_OPTIONS;
    else process.env.NODE_OPTIONS = nodeOptions;
    await Promise.all(servers.map((s) => s.stop()));
  }
}

/**
 * Builds the bench feature with the real `vite build` (writes its gitignored `dist-server/`).
 *
 * @returns {Promise<number>} milliseconds taken
 */
function buildFeature() {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [VITE_BIN, 'build'],
      { cwd: FEATURE_DIR, env: { ...process.env, NO_COLOR: '1' }, timeout: 120_000, maxBuffer: 4 << 20 },
      (error, stdout, stderr) => {
        if (error)
          return reject(
            new Error(`isolate: vite build of the bench feature failed: ${error.message}\n${stdout}${stderr}`),
          );
        resolve(performance.now() - started);
      },
    );
  });
}

/**
 * Inserts `count` rows (`item 1` ..) through the `seedItems` mutation handler; returns their ids in order.
 *
 * @param {import('./lib/processes.js').ServerProcess} server
 * @param {number} count
 * @returns {Promise<string[]>}
 */
async function seed(server, count) {
  const ids = [];
  while (ids.length < count) {
    const batch = Math.min(SEED_BATCH, count - ids.length);
    const added = JSON.parse(await call(server, 'seedItems', rpcBody([ids.length + 1, batch])));
    if (!Array.isArray(added) || added.length !== batch)
      throw new Error(
        `isolate: seedItems(${ids.length + 1}, ${batch}) returned ${JSON.stringify(added).slice(0, 200)}`,
      );
    ids.push(...added);
  }
  return ids;
}

/**
 * Fails unless both paths answer byte for byte alike: the trivial call, and the db call for every
 * seeded id (which must return its own row); the bare server's two trivial calls too.
 *
 * @param {import('./lib/processes.js').ServerProcess} server
 * @param {import('./lib/processes.js').ServerProcess} bare
 * @param {string[]} ids
 */
async function checkSameAnswers(server, bare, ids) {
  const compare = async (workload, body, check) => {
    const [isolate, plain] = await Promise.all(PATHS.map((p) => call(server, FUNCTIONS[workload][p], body)));
    if (isolate !== plain)
      throw new Error(
        `isolate: the two paths answer ${workload} ${body} differently:\n  isolate: ${isolate.slice(0, 300)}\n  plain:   ${plain.slice(0, 300)}`,
      );
    const problem = check(JSON.parse(plain));
    if (problem) throw new Error(`isolate: ${workload} ${body} answered ${plain.slice(0, 300)}: ${problem}`);
  };
  await compare('trivial', rpcBody([]), (value) =>
    value?.ok === true && value.n === 1 ? null : 'expected {"ok":true,"n":1}',
  );
  const expected = await call(server, FUNCTIONS.trivial.plain, rpcBody([]));
  for (const fn of Object.values(FUNCTIONS.trivial)) {
    const answer = await call(bare, fn, rpcBody([]));
    if (answer !== expected)
      throw new Error(`isolate: the bare ${fn} answered ${answer.slice(0, 300)}, not ${expected}`);
  }
  for (const [i, id] of ids.entries()) {
    await compare('db', rpcBody([id]), (row) =>
      row?.id === id && row.name === `item ${i + 1}` ? null : `expected the row "item ${i + 1}" with id ${id}`,
    );
  }
}

/**
 * One call of a function of the bench feature; the answer's body, or an error unless 200.
 *
 * @param {import('./lib/processes.js').ServerProcess} server
 * @param {string} fn
 * @param {string} body
 */
async function call(server, fn, body) {
  const res = await fetch(`http://127.0.0.1:${server.port}/rpc/${FEATURE_ID}/${fn}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`isolate: ${fn} ${body} answered ${res.status} ${text.slice(0, 300)}`);
  return text;
}

/**
 * Request body of a call.
 *
 * @param {unknown[]} args
 */
function rpcBody(args) {
  return JSON.stringify({ args });
}

/**
 * What isolated-vm alone costs per call (`lib/isolate-floor.js` in a child process, after the
 * measurements): the floor under `overhead_us`.
 *
 * `apply_busy_floor_us` is the same at the throughput workload's calls in flight, over as many
 * isolates as the host's pool holds by default.
 *
 * @returns {Promise<{ apply_floor_us: number, apply_sync_floor_us: number, apply_busy_floor_us: number }>}
 */
function measureFloor() {
  const script = fileURLToPath(new URL('./lib/isolate-floor.js', import.meta.url));
  return new Promise((resolve, reject) => {
    const busy = [String(SETTINGS.concurrency), String(DEFAULT_LIMITS.maxIsolates)];
    execFile(process.execPath, [NO_NODE_SNAPSHOT, script, ...busy], { timeout: 120_000 }, (error, stdout, stderr) => {
      if (error) return reject(new Error(`isolate: the floor measurement failed: ${error.message}\n${stderr}`));
      const { apply_us, apply_sync_us, apply_busy_us } = JSON.parse(stdout.trim().split('\n').pop() ?? '{}');
      resolve({ apply_floor_us: apply_us, apply_sync_floor_us: apply_sync_us, apply_busy_floor_us: apply_busy_us });
    });
  });
}

/**
 * The final JSON line: isolate throughput relative to plain (trivial and db workloads), the
 * isolate's extra p50 latency at one call at a time, and its extra host CPU per trivial call.
 *
 * @param {Record<string, Record<string, import('./lib/measure.js').Measurement>>} summary
 */
function resultLine(summary) {
  return {
    bench: 'isolate',
    trivial_ratio: round(summary.trivial.isolate.rps / summary.trivial.plain.rps, 2),
    db_ratio: round(summary.db.isolate.rps / summary.db.plain.rps, 2),
    p50_overhead_ms: round(summary['trivial-c1'].isolate.p50Ms - summary['trivial-c1'].plain.p50Ms, 3),
    overhead_us: round(summary.trivial.isolate.cpuPerRequestUs - summary.trivial.plain.cpuPerRequestUs, 1),
    overhead_c1_us: round(
      summary['trivial-c1'].isolate.cpuPerRequestUs - summary['trivial-c1'].plain.cpuPerRequestUs,
      1,
    ),
    http_floor_us: round(
      summary.trivial['bare-isolate'].cpuPerRequestUs - summary.trivial['bare-plain'].cpuPerRequestUs,
      1,
    ),
    http_floor_c1_us: round(
      summary['trivial-c1']['bare-isolate'].cpuPerRequestUs - summary['trivial-c1']['bare-plain'].cpuPerRequestUs,
      1,
    ),
  };
}

/**
 * The median of each figure over the rounds.
 *
 * @param {import('./lib/measure.js').Measurement[]} rows
 * @returns {import('./lib/measure.js').Measurement}
 */
function medians(rows) {
  const pick = (key) => (rows.some((row) => row[key] === null) ? null : median(rows.map((row) => row[key])));
  return Object.fromEntries(Object.keys(rows[0]).map((key) => [key, pick(key)]));
}
