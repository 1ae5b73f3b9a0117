/**
 * CRUD bench: requests per second and latency of declarative CRUD calls (`queryRows`, `insertRow`)
 * through the host's RPC route (`host`), against the same SQL hand-written behind a bare Hono
 * route, run directly on PGlite (`hono`), in a role-scoped transaction (`hono-tx`), or as the
 * host's own one message per statement (`hono-stmt`: the floor of the host's parts, a bare route
 * and the database work the host does). Every server has its own in-memory PGlite with the same rows (`crud/targets.js`).
 * Three workloads, one after the other: by primary key, a filtered list, an insert (last, so the
 * rows it adds never reach a read measurement). Per workload, an unmeasured settling pass, then
 * rounds interleaving the targets; a target's figures are the medians over its rounds.
 * The last line printed is one JSON object.
 */
import { describe, measure, measureQuietly } from './lib/measure.js';
import { startServer } from './lib/processes.js';
import { median, round } from './lib/stats.js';
import { machine } from './lib/system.js';
import { comparableAnswer, SEED_ROWS, WORKLOADS } from './crud/workloads.js';

/** Measurement settings (loopback only). */
export const SETTINGS = {
  targets: ['hono', 'hono-tx', 'hono-stmt', 'host'],
  rounds: 3,
  concurrency: 16,
  /**
   * Each workload's unmeasured pass per server. A fresh server runs slower for seconds of load: V8
   * compiles PGlite's WebAssembly on background threads and the host's own code later than a bare
   * route's, so a short pass measures warm-up rather than the server.
   */
  settleMs: 6_000,
  warmupMs: 500,
  durationMs: 2_500,
  retries: 3,
};

/** Lets the load generator send a workload's `bodies` in turn (see `crud/rotate-bodies.js`). */
const ROTATE_BODIES = `--import=${new URL('./crud/rotate-bodies.js', import.meta.url).href}`;

/** Runs the bench and prints its lines. */
export async function run() {
  const { targets, rounds, concurrency, settleMs, warmupMs, durationMs, retries } = SETTINGS;
  for (const w of WORKLOADS) console.log(`crud: ${w.name.padEnd(6)} POST ${w.path}  ${w.describe}  e.g. ${w.body}`);
  console.log(`crud: ${machine()}`);
  console.log(
    `crud: in-memory PGlite per server, ${SEED_ROWS} seed rows; ${targets.join(', ')}; per workload ${rounds} rounds of ${warmupMs} ms warm-up + ${durationMs} ms measurement, ${concurrency} requests in flight`,
  );
  const servers = [];
  const nodeOptions = process.env.NODE_OPTIONS;
  try {
    for (const name of targets) servers.push(await startServer('crud/targets.js', name));
    await checkSameAnswers(servers);
    // Only the load generators start from here on; the preload acts only on a config with `bodies`.
    process.env.NODE_OPTIONS = [nodeOptions, ROTATE_BODIES].filter(Boolean).join(' ');
    // Measurements disturbed by other processes are repeated, at most `retries` times in all.
    const budget = { retries };
    /** @type {Record<string, Record<string, import('./lib/measure.js').Measurement>>} */
    const summary = {};
    for (const workload of WORKLOADS) {
      const load = { path: workload.path, body: workload.body, bodies: workload.bodies, concurrency };
      // Unmeasured: warms each server's JIT and PGlite on this workload.
      for (const server of servers) await measure(server, { ...load, warmupMs: 0, durationMs: settleMs });
      /** @type {Record<string, import('./lib/measure.js').Measurement[]>} */
      const results = Object.fromEntries(targets.map((t) => [t, []]));
      for (let r = 1; r <= rounds; r++) {
        for (const server of servers) {
          const left = budget.retries;
          const m = await measureQuietly(server, { ...load, warmupMs, durationMs }, budget);
          results[server.name].push(m);
          const repeats = left - budget.retries;
          console.log(
            `  ${workload.name.padEnd(6)} round ${r} ${server.name.padEnd(9)} ${describe(m)}${repeats ? `  (best of ${repeats + 1}: other load)` : ''}`,
          );
        }
      }
      summary[workload.name] = Object.fromEntries(targets.map((t) => [t, medians(results[t])]));
      for (const t of targets)
        console.log(`${workload.name.padEnd(6)} ${t.padEnd(9)} median  ${describe(summary[workload.name][t])}`);
    }
    console.log(JSON.stringify(resultLine(summary)));
  } finally {
    if (nodeOptions === undefined) delete process.env.NODE_OPTIONS;
    else process.env.NODE_OPTIONS = nodeOptions;
    await Promise.all(servers.map((s) => s.stop()));
  }
}

/**
 * Fails unless every target answers each workload's call as the host does (byte for byte for the
 * reads; for the insert, apart from the new row's `id` and `createdAt`). Adds one row per server.
 *
 * @param {import('./lib/processes.js').ServerProcess[]} servers
 */
async function checkSameAnswers(servers) {
  for (const workload of WORKLOADS) {
    for (const body of [workload.body, ...(workload.bodies ?? []).slice(-1)]) {
      const answers = await Promise.all(servers.map((s) => call(s, workload.path, body)));
      const comparable = answers.map((a) => comparableAnswer(workload, a));
      const differing = servers.filter((_, i) => comparable[i] !== comparable[servers.length - 1]);
      if (differing.length) {
        const lines = servers.map((s, i) => `  ${s.name}: ${answers[i].slice(0, 300)}`).join('\n');
        throw new Error(`crud: the targets answer ${workload.name} ${body} differently:\n${lines}`);
      }
    }
  }
}

/**
 * One call; the answer's body, or an error unless 200.
 *
 * @param {import('./lib/processes.js').ServerProcess} server
 * @param {string} path
 * @param {string} body
 */
async function call(server, path, body) {
  const res = await fetch(`http://127.0.0.1:${server.port}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
  });
  const text = await res.text();
  if (res.status !== 200)
    throw new Error(`crud: ${server.name} answered ${path} ${body} with ${res.status} ${text.slice(0, 300)}`);
  return text;
}

/**
 * The final JSON line: per workload, the host relative to the raw baseline (`*_ratio`, the
 * headline), to the role-scoped one (`*_tx_ratio`) and to its own parts (`*_stmt_ratio`), and
 * the parts relative to the raw baseline (`*_floor_ratio`: what the headline would be if the host
 * cost nothing above a bare route).
 *
 * @param {Record<string, Record<string, import('./lib/measure.js').Measurement>>} summary
 */
function resultLine(summary) {
  const line = { bench: 'crud' };
  for (const name of Object.keys(summary))
    line[`${name}_ratio`] = round(summary[name].host.rps / summary[name].hono.rps, 2);
  for (const [name, s] of Object.entries(summary)) {
    Object.assign(line, {
      [`${name}_host_rps`]: round(s.host.rps),
      [`${name}_hono_rps`]: round(s.hono.rps),
      [`${name}_hono_tx_rps`]: round(s['hono-tx'].rps),
      [`${name}_tx_ratio`]: round(s.host.rps / s['hono-tx'].rps, 2),
      [`${name}_hono_stmt_rps`]: round(s['hono-stmt'].rps),
      [`${name}_stmt_ratio`]: round(s.host.rps / s['hono-stmt'].rps, 2),
      [`${name}_floor_ratio`]: round(s['hono-stmt'].rps / s.hono.rps, 2),
      [`${name}_host_p99_ms`]: round(s.host.p99Ms, 2),
      [`${name}_hono_p99_ms`]: round(s.hono.p99Ms, 2),
    });
  }
  return line;
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
