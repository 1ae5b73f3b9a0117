/**
 * RPC bench: requests per second and latency of one trivial server function call, served by a bare
 * Hono app (`hono`), by the host (`host`) and by the host inside the Vite dev server (`vite`).
 * Each server runs in its own process and the load generator in another. After an unmeasured
 * settling pass, rounds interleave the targets; a target's figures are the medians over its rounds.
 * The last line printed is one JSON object.
 */
import { describe, measure, measureQuietly } from './lib/measure.js';
import { startServer } from './lib/processes.js';
import { median, round } from './lib/stats.js';
import { machine } from './lib/system.js';
import { RPC_BODY, RPC_PATH } from './rpc-targets.js';

/** Measurement settings (loopback only). */
export const SETTINGS = {
  targets: ['hono', 'host', 'vite'],
  rounds: 3,
  concurrency: 16,
  settleMs: 2_000,
  warmupMs: 1_000,
  durationMs: 3_000,
  retries: 4,
};

/** Runs the bench and prints its lines. */
export async function run() {
  const { targets, rounds, concurrency, settleMs, warmupMs, durationMs, retries } = SETTINGS;
  console.log(`rpc: POST ${RPC_PATH} ${RPC_BODY}`);
  console.log(`rpc: ${machine()}`);
  console.log(
    `rpc: ${targets.join(', ')}; ${rounds} rounds of ${warmupMs} ms warm-up + ${durationMs} ms measurement, ${concurrency} requests in flight`,
  );
  const servers = [];
  try {
    for (const name of targets) servers.push(await startServer('rpc-targets.js', name));
    const load = { path: RPC_PATH, body: RPC_BODY, concurrency };
    // Unmeasured: lets each server finish starting up (Vite scans dependencies) and warm its JIT.
    for (const server of servers) await measure(server, { ...load, warmupMs: 0, durationMs: settleMs });
    // Measurements disturbed by other processes are repeated, at most `retries` times in all.
    const budget = { retries };
    /** @type {Record<string, import('./lib/measure.js').Measurement[]>} */
    const results = Object.fromEntries(targets.map((t) => [t, []]));
    for (let r = 1; r <= rounds; r++) {
      for (const server of servers) {
        const left = budget.retries;
        const m = await measureQuietly(server, { ...load, warmupMs, durationMs }, budget);
        results[server.name].push(m);
        const repeats = left - budget.retries;
        console.log(
          `  round ${r} ${server.name.padEnd(4)} ${describe(m)}${repeats ? `  (best of ${repeats + 1}: other load)` : ''}`,
        );
      }
    }
    const summary = Object.fromEntries(targets.map((t) => [t, medians(results[t])]));
    for (const t of targets) console.log(`${t.padEnd(4)} median  ${describe(summary[t])}`);
    console.log(JSON.stringify(resultLine(summary)));
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
  }
}

/** The final JSON line: host and Vite relative to bare Hono. */
function resultLine({ hono, host, vite }) {
  return {
    bench: 'rpc',
    host_rps: round(host.rps),
    hono_rps: round(hono.rps),
    ratio: round(host.rps / hono.rps, 2),
    host_p99_ms: round(host.p99Ms, 2),
    hono_p99_ms: round(hono.p99Ms, 2),
    vite_rps: round(vite.rps),
    vite_ratio: round(vite.rps / hono.rps, 2),
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
