/**
 * Proxy bench: what the host's endpoint proxy mode costs. One upstream process (a bare Hono app on
 * `@hono/node-server`, `proxy/targets.js`) serves `POST /rpc/getData`; the real `favn serve` CLI,
 * in its own process, hosts an endpoint-mode feature in front of it (`proxy/serve-cli.js`) and
 * forwards `POST /rpc/feature-bench-proxy/getData` there. Two ways to make the same call:
 *
 * - `direct`: `POST {upstream}/rpc/getData` with `{"args":[]}`;
 * - `proxy`: `POST {favn serve}/rpc/feature-bench-proxy/getData` with `{"args":[]}`, which the
 *   host forwards as `{"args":[],"context":{...}}` and whose answer it passes through.
 *
 * Both must answer the same JSON before anything is measured. After an unmeasured settling pass
 * per path, rounds interleave the two (the order alternates from round to round); a path's figures
 * are the medians over its rounds. `ratio` is proxy req/s over direct req/s, `p99_overhead_ms` the
 * proxy's p99 minus the direct p99, at 16 requests in flight. The last line printed is one JSON
 * object.
 *
 * How the processes share the CPU: every process is one Node event loop, so each can use at most
 * about one core. Measuring `direct`, two processes are busy: the load generator and the upstream,
 * about one core each (`favn serve` idles meanwhile). Measuring `proxy`, three are: the load
 * generator, `favn serve` and the upstream. On a 2-core machine the operating system
 * splits the two cores among those three, so the proxy path pays for its extra hop twice: with the
 * host's own CPU per call, and with the CPU it takes away from the load generator and the upstream.
 * The figures printed per measurement show the split: `server` is the upstream alone for `direct`,
 * and `favn serve` + upstream for `proxy` (the line after it divides that between the two).
 */
import { describe, measure, measureQuietly } from './lib/measure.js';
import { startServer } from './lib/processes.js';
import { median, round } from './lib/stats.js';
import { machine } from './lib/system.js';
import { startServeCli } from './proxy/serve-cli.js';
import { PROXY_PATH, RPC_BODY, RPC_PATH } from './proxy/targets.js';

/** Measurement settings (loopback only). */
export const SETTINGS = { rounds: 3, concurrency: 16, settleMs: 1_500, warmupMs: 500, durationMs: 2_500, retries: 3 };

/** Goal the result is reported against (not asserted). */
const TARGET_RATIO = 0.7;

/** The two paths, in the order of the first round. */
const PATHS = ['direct', 'proxy'];

/** Runs the bench and prints its lines. */
export async function run() {
  const { rounds, concurrency, settleMs, warmupMs, durationMs, retries } = SETTINGS;
  console.log(`proxy: direct POST {upstream}${RPC_PATH}  ${RPC_BODY}`);
  console.log(
    `proxy: proxy  POST {favn serve}${PROXY_PATH}  ${RPC_BODY}  (endpoint mode, forwarded to {upstream}${RPC_PATH})`,
  );
  console.log(`proxy: ${machine()}`);
  console.log(
    `proxy: ${PATHS.join(', ')}; ${rounds} rounds of ${warmupMs} ms warm-up + ${durationMs} ms measurement, ${concurrency} requests in flight`,
  );
  /** @type {import('./lib/processes.js').ServerProcess | undefined} */
  let upstream;
  /** @type {import('./proxy/serve-cli.js').ServeProcess | undefined} */
  let host;
  try {
    upstream = await startServer('proxy/targets.js', 'upstream');
    host = await startServeCli(upstream.port);
    const { direct, proxy } = paths(upstream, host);
    await checkSameAnswers(direct, proxy);
    // Unmeasured: warms the JIT of every process on its path, and the host's pool of upstream connections.
    for (const target of [direct, proxy])
      await failOnErrors(
        target,
        await measure(target, { path: target.path, body: RPC_BODY, concurrency, warmupMs: 0, durationMs: settleMs }),
      );
    // Measurements disturbed by other processes are repeated, at most `retries` times in all.
    const budget = { retries };
    /** @type {Record<string, Row[]>} */
    const results = { direct: [], proxy: [] };
    for (let r = 1; r <= rounds; r++) {
      const order = r % 2 ? [direct, proxy] : [proxy, direct];
      for (const target of order) {
        const left = budget.retries;
        const row = await failOnErrors(
          target,
          await measureTarget(target, { path: target.path, body: RPC_BODY, concurrency, warmupMs, durationMs }, budget),
        );
        results[target.name].push(row);
        const repeats = left - budget.retries;
        console.log(
          `  round ${r} ${target.name.padEnd(6)} ${describe(row)}${repeats ? `  (best of ${repeats + 1}: other load)` : ''}${split(row)}`,
        );
      }
    }
    const summary = { direct: medians(results.direct), proxy: medians(results.proxy) };
    for (const name of PATHS)
      console.log(`${name.padEnd(6)} median  ${describe(summary[name])}${split(summary[name])}`);
    const line = resultLine(summary);
    console.log(
      `proxy: ratio ${line.ratio} (goal >= ${TARGET_RATIO}: ${line.ratio >= TARGET_RATIO ? 'met' : 'missed'}), p99 overhead ${line.p99_overhead_ms} ms`,
    );
    console.log(JSON.stringify(line));
  } finally {
    await Promise.all([host?.stop(), upstream?.stop()]);
  }
}

/**
 * @typedef {import('./lib/measure.js').Measurement & { hostUsPerRequest: number | null, upstreamUsPerRequest: number | null }} Row
 * `hostUsPerRequest` and `upstreamUsPerRequest` divide `cpuPerRequestUs` between `favn serve` and
 * the upstream (proxy only, else null).
 */

/**
 * @typedef {import('./lib/processes.js').ServerProcess & { path: string, parts: (() => Promise<{ hostMs: number, upstreamMs: number, at: number }>) | null }} Target
 */

/**
 * The two measured paths. The proxy's `cpu` counts `favn serve` and the upstream together, as
 * both serve its calls (and `measure` would otherwise count the upstream as "other load").
 *
 * @param {import('./lib/processes.js').ServerProcess} upstream
 * @param {import('./proxy/serve-cli.js').ServeProcess} host
 * @returns {{ direct: Target, proxy: Target }}
 */
function paths(upstream, host) {
  const parts = async () => {
    const [h, u] = await Promise.all([host.cpu(), upstream.cpu()]);
    return { hostMs: h.cpuMs, upstreamMs: u.cpuMs, at: u.at };
  };
  return {
    direct: {
      name: 'direct',
      port: upstream.port,
      path: RPC_PATH,
      cpu: upstream.cpu,
      stop: upstream.stop,
      parts: null,
    },
    proxy: {
      name: 'proxy',
      port: host.port,
      path: PROXY_PATH,
      cpu: async () => {
        const p = await parts();
        return { cpuMs: p.hostMs + p.upstreamMs, at: p.at };
      },
      stop: host.stop,
      parts,
    },
  };
}

/**
 * `measureQuietly`, plus for the proxy how its server CPU divides between `favn serve` and the
 * upstream (their shares over the measurement and any repeats of it).
 *
 * @param {Target} target
 * @param {Parameters<typeof measureQuietly>[1]} settings
 * @param {{ retries: number }} budget
 * @returns {Promise<Row>}
 */
async function measureTarget(target, settings, budget) {
  const before = target.parts ? await target.parts() : null;
  const m = await measureQuietly(target, settings, budget);
  const after = target.parts ? await target.parts() : null;
  if (!before || !after) return { ...m, hostUsPerRequest: null, upstreamUsPerRequest: null };
  const hostMs = after.hostMs - before.hostMs;
  const upstreamMs = after.upstreamMs - before.upstreamMs;
  const hostShare = hostMs / (hostMs + upstreamMs);
  return {
    ...m,
    hostUsPerRequest: m.cpuPerRequestUs * hostShare,
    upstreamUsPerRequest: m.cpuPerRequestUs * (1 - hostShare),
  };
}

/** The per-process split of a proxy row's server CPU, as a suffix ('' for direct). */
function split(row) {
  if (row.hostUsPerRequest === null || !Number.isFinite(row.hostUsPerRequest)) return '';
  return `  (favn serve ${Math.round(row.hostUsPerRequest)} + upstream ${Math.round(row.upstreamUsPerRequest)} µs/req)`;
}

/**
 * Fails unless the upstream and `favn serve` answer the call with the same JSON, byte for byte.
 *
 * @param {Target} direct
 * @param {Target} proxy
 */
async function checkSameAnswers(direct, proxy) {
  const [a, b] = await Promise.all([call(direct), call(proxy)]);
  if (a !== b)
    throw new Error(
      `proxy: direct and proxy answer ${RPC_BODY} differently:\n  direct: ${a.slice(0, 300)}\n  proxy:  ${b.slice(0, 300)}`,
    );
  JSON.parse(a);
}

/**
 * Returns the measurement, or fails when some of its calls failed (a refused call is cheaper than
 * a served one, so the figures would mean nothing), with the answer of one more call.
 *
 * @template {import('./lib/measure.js').Measurement} M
 * @param {Target} target
 * @param {M} m
 * @returns {Promise<M>}
 */
async function failOnErrors(target, m) {
  if (m.errors === 0) return m;
  const answer = await call(target).then(
    (text) => `200 ${text.slice(0, 300)}`,
    (error) => error.message,
  );
  throw new Error(`proxy: ${m.errors} calls to ${target.name} failed during a measurement; one more call: ${answer}`);
}

/**
 * One call; the answer's body, or an error unless 200.
 *
 * @param {Target} target
 */
async function call(target) {
  const res = await fetch(`http://127.0.0.1:${target.port}${target.path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: RPC_BODY,
  });
  const text = await res.text();
  if (res.status !== 200)
    throw new Error(
      `proxy: ${target.name} answered ${target.path} ${RPC_BODY} with ${res.status} ${text.slice(0, 300)}`,
    );
  return text;
}

/**
 * The final JSON line.
 *
 * @param {{ direct: Row, proxy: Row }} summary
 */
function resultLine({ direct, proxy }) {
  return {
    bench: 'proxy',
    ratio: round(proxy.rps / direct.rps, 2),
    p99_overhead_ms: round(proxy.p99Ms - direct.p99Ms, 2),
  };
}

/**
 * The median of each figure over the rounds.
 *
 * @param {Row[]} rows
 * @returns {Row}
 */
function medians(rows) {
  const pick = (key) => (rows.some((row) => row[key] === null) ? null : median(rows.map((row) => row[key])));
  return /** @type {Row} */ (Object.fromEntries(Object.keys(rows[0]).map((key) => [key, pick(key)])));
}
