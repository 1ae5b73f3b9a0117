/** One load run against a server process, with the CPU accounting around it. */
import { runLoad } from './processes.js';
import { otherCpu, systemCpu, waitForQuiet } from './system.js';

/** Share of one core used by other processes (or stolen) above which a measurement is disturbed. */
const DISTURBED = 0.15;

/**
 * @typedef {object} Measurement
 * @property {number} rps 200 answers per second during the measurement
 * @property {number} p50Ms
 * @property {number} p99Ms
 * @property {number} errors failed requests during the measurement
 * @property {number} serverCpu server CPU over the run (warm-up + measurement), share of one core
 * @property {number} clientCpu load generator CPU over the measurement, share of one core
 * @property {number} cpuPerRequestUs server CPU time per request (warm-up + measurement)
 * @property {number | null} other CPU used by other processes meanwhile, share of one core
 * @property {number | null} steal CPU stolen by the hypervisor meanwhile, share of one core
 */

/**
 * Loads `server` at `path` with `body` and measures it.
 *
 * @param {import('./processes.js').ServerProcess} server
 * @param {{ path: string, body: string, concurrency: number, warmupMs: number, durationMs: number }} settings
 * @returns {Promise<Measurement>}
 */
export async function measure(server, { path, body, ...load }) {
  const before = await server.cpu();
  const systemBefore = systemCpu();
  const result = await runLoad({ url: `http://127.0.0.1:${server.port}${path}`, body, ...load });
  const systemAfter = systemCpu();
  const after = await server.cpu();
  if (result.ok === 0) throw new Error(`${server.name}: no request succeeded (${result.errors} failed)`);
  const serverMs = after.cpuMs - before.cpuMs;
  const others = otherCpu(systemBefore, systemAfter, serverMs + result.clientCpuTotalMs);
  return {
    rps: result.rps,
    p50Ms: result.p50Ms,
    p99Ms: result.p99Ms,
    errors: result.errors,
    serverCpu: serverMs / (after.at - before.at),
    clientCpu: result.clientCpu,
    cpuPerRequestUs: (serverMs * 1000) / result.sent,
    other: others?.other ?? null,
    steal: others?.steal ?? null,
  };
}

/**
 * Like `measure`, but when other processes disturbed the measurement, waits for a quiet machine and
 * measures again, while `budget.retries` lasts; keeps the less disturbed of the measurements.
 *
 * @param {import('./processes.js').ServerProcess} server
 * @param {Parameters<typeof measure>[1]} settings
 * @param {{ retries: number }} budget shared by all measurements of a bench
 * @returns {Promise<Measurement>}
 */
export async function measureQuietly(server, settings, budget) {
  let best = await measure(server, settings);
  while (disturbance(best) > DISTURBED && budget.retries > 0) {
    budget.retries--;
    await waitForQuiet();
    const again = await measure(server, settings);
    if (disturbance(again) < disturbance(best)) best = again;
  }
  return best;
}

/** CPU used by others or stolen during a measurement, as a share of one core (0 if unknown). */
function disturbance(m) {
  return (m.other ?? 0) + (m.steal ?? 0);
}

/**
 * One human-readable line for a measurement (or a summary of several).
 *
 * @param {Measurement} m
 */
export function describe(m) {
  const pct = (x) => (x === null ? '  n/a' : `${Math.round(x * 100)}%`.padStart(5));
  const busy = disturbance(m) > DISTURBED ? '  (disturbed by other load)' : '';
  return (
    `${String(Math.round(m.rps)).padStart(6)} rps  p50 ${m.p50Ms.toFixed(2)} ms  p99 ${m.p99Ms.toFixed(2).padStart(5)} ms  ` +
    `server ${Math.round(m.cpuPerRequestUs).toString().padStart(3)} µs/req  cpu: server${pct(m.serverCpu)} client${pct(m.clientCpu)} other${pct(m.other)} steal${pct(m.steal)}` +
    (m.errors ? `  ${m.errors} errors` : '') +
    busy
  );
}
