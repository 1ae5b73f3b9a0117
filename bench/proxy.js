/**
 * Proxy bench: what the host's endpoint proxy mode costs. One upstream process (a bare Hono app on
 * `@hono/node-server`, `proxy/targets.js`) serves `POST /rpc/getData`; the real `favn serve` CLI,
 * in its own process, hosts an endpoint-mode feature in front of it (`proxy/serve-cli.js`) and
 * forwards `POST /rpc/feature-bench-proxy/getData` there. A minimal forwarder (`proxy/forwarder.js`,
 * a bare Hono app in its own process with a keep-alive `node:http` Agent) does the same hop with
 * nothing else, as the baseline for what any proxy costs. A raw forwarder (`raw`, the same file: bare
 * `node:http`, no framework) does the same hop with the least Node can do: the floor. Four ways to
 * make the same call:
 *
 * - `direct`: `POST {upstream}/rpc/getData` with `{"args":[]}`;
 * - `forwarder`: `POST {forwarder}/rpc/feature-bench-proxy/getData` with `{"args":[]}`, which it
 *   forwards as it is;
 * - `raw`: the same through the raw forwarder;
 * - `proxy`: `POST {favn serve}/rpc/feature-bench-proxy/getData` with `{"args":[]}`, which the
 *   host forwards as `{"args":[],"context":{...}}` and whose answer it passes through.
 *
 * All must answer the same JSON before anything is measured. After an unmeasured settling pass
 * per path, rounds interleave the three (the order reverses from round to round); a path's figures
 * are the medians over its rounds. At 16 requests in flight: `ratio` is proxy req/s over direct
 * req/s, `p99_overhead_ms` the proxy's p99 minus the direct p99; `forwarder_ratio` is proxy req/s
 * over forwarder req/s, `forwarder_p99_overhead_ms` the forwarder's p99 minus the direct p99 and
 * `proxy_vs_forwarder_p99_ms` the proxy's p99 minus the forwarder's; `forwarder_us_per_req` and
 * `serve_us_per_req` the CPU per call of the forwarder and of `favn serve` alone. The floor:
 * `raw_ratio` is proxy req/s over raw req/s, `floor_ratio` raw req/s over forwarder req/s (the
 * most any forwarder on Node's HTTP server and client reaches against the Hono forwarder),
 * `raw_p99_overhead_ms` the raw forwarder's p99 minus the direct p99 (the floor under
 * `p99_overhead_ms`) and `raw_us_per_req` its CPU per call. The last line printed is one JSON
 * object.
 *
 * How the processes share the CPU: every process is one Node event loop, so each can use at most
 * about one core. Measuring `direct`, two processes are busy: the load generator and the upstream,
 * about one core each (`favn serve` idles meanwhile). Measuring `proxy`, three are: the load
 * generator, `favn serve` and the upstream (and likewise the forwarder for `forwarder`). On a 2-core machine the operating system
 * splits the two cores among those three, so the proxy path pays for its extra hop twice: with the
 * host's own CPU per call, and with the CPU it takes away from the load generator and the upstream.
 * The figures printed per measurement show the split: `server` is the upstream alone for `direct`,
 * and `favn serve` (or the forwarder) + upstream for `proxy` (or `forwarder`), divided between
 * the two at the end of the line.
 */
import { describe, measure, measureQuietly } from './lib/measure.js';
import { startServer } from './lib/processes.js';
import { median, round } from './lib/stats.js';
import { machine } from './lib/system.js';
import { startServeCli } from './proxy/serve-cli.js';
import { PROXY_PATH, RPC_BODY, RPC_PATH } from './proxy/targets.js';

/** Tells the forwarder's process (`proxy/forwarder.js`) where the upstream listens. */
const UPSTREAM_PORT_ENV = 'BENCH_PROXY_UPSTREAM_PORT';

/** Measurement settings (loopback only). */
export const SETTINGS = { rounds: 3, concurrency: 16, settleMs: 1_500, warmupMs: 500, durationMs: 2_500, retries: 3 };

/** Goal the result is reported against (not asserted). */
const TARGET_RATIO = 0.7;

/** The three paths, in the order of the first round. */
const PATHS = ['direct', 'forwarder', 'raw', 'proxy'];

/** Runs the bench and prints its lines. */
export async function run() {
  const { rounds, concurrency, settleMs, warmupMs, durationMs, retries } = SETTINGS;
  console.log(`proxy: direct POST {upstream}${RPC_PATH}  ${RPC_BODY}`);
  console.log(`proxy: forwarder POST {forwarder}${PROXY_PATH}  ${RPC_BODY}  (bare Hono, forwarded as is)`);
  console.log(`proxy: raw    POST {raw}${PROXY_PATH}  ${RPC_BODY}  (bare node:http, forwarded as is)`);
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
  /** @type {import('./lib/processes.js').ServerProcess | undefined} */
  let forwarder;
  /** @type {import('./lib/processes.js').ServerProcess | undefined} */
  let raw;
  const previousPort = process.env[UPSTREAM_PORT_ENV];
  try {
    upstream = await startServer('proxy/targets.js', 'upstream');
    host = await startServeCli(upstream.port);
    process.env[UPSTREAM_PORT_ENV] = String(upstream.port);
    forwarder = await startServer('proxy/forwarder.js', 'forwarder');
    raw = await startServer('proxy/forwarder.js', 'raw');
    const all = paths(upstream, host, forwarder, raw);
    const targets = PATHS.map((name) => all[name]);
    await checkSameAnswers(targets);
    // Unmeasured: warms the JIT of every process on its path, and the pools of upstream connections.
    for (const target of targets)
      await failOnErrors(
        target,
        await measure(target, { path: target.path, body: RPC_BODY, concurrency, warmupMs: 0, durationMs: settleMs }),
      );
    // Measurements disturbed by other processes are repeated, at most `retries` times in all.
    const budget = { retries };
    /** @type {Record<string, Row[]>} */
    const results = Object.fromEntries(PATHS.map((name) => [name, []]));
    for (let r = 1; r <= rounds; r++) {
      const order = r % 2 ? targets : [...targets].reverse();
      for (const target of order) {
        const left = budget.retries;
        const row = await failOnErrors(
          target,
          await measureTarget(target, { path: target.path, body: RPC_BODY, concurrency, warmupMs, durationMs }, budget),
        );
        results[target.name].push(row);
        const repeats = left - budget.retries;
        console.log(
          `  round ${r} ${target.name.padEnd(9)} ${describe(row)}${repeats ? `  (best of ${repeats + 1}: other load)` : ''}${split(row)}`,
        );
      }
    }
    const summary = /** @type {{ direct: Row, forwarder: Row, raw: Row, proxy: Row }} */ (
      Object.fromEntries(PATHS.map((name) => [name, medians(results[name])]))
    );
    for (const name of PATHS)
      console.log(`${name.padEnd(9)} median  ${describe(summary[name])}${split(summary[name])}`);
    const line = resultLine(summary);
    console.log(
      `proxy: ratio ${line.ratio} (goal >= ${TARGET_RATIO}: ${line.ratio >= TARGET_RATIO ? 'met' : 'missed'}), p99 overhead ${line.p99_overhead_ms} ms; ` +
        `forwarder_ratio ${line.forwarder_ratio} (favn serve / forwarder), forwarder p99 overhead ${line.forwarder_p99_overhead_ms} ms, ` +
        `favn serve p99 over the forwarder ${line.proxy_vs_forwarder_p99_ms} ms; CPU per call: forwarder ${line.forwarder_us_per_req} µs, favn serve ${line.serve_us_per_req} µs`,
    );
    console.log(
      `proxy: floor, the raw node:http forwarder: raw / forwarder ${line.floor_ratio} (the most a forwarder reaches against the Hono one), ` +
        `favn serve / raw ${line.raw_ratio}, raw p99 overhead ${line.raw_p99_overhead_ms} ms, raw CPU per call ${line.raw_us_per_req} µs`,
    );
    console.log(JSON.stringify(line));
  } finally {
    if (previousPort === undefined) delete process.env[UPSTREAM_PORT_ENV];
    else process.env[UPSTREAM_PORT_ENV] = previousPort;
    await Promise.all([host?.stop(), forwarder?.stop(), raw?.stop(), upstream?.stop()]);
  }
}

/**
 * @typedef {import('./lib/measure.js').Measurement & { hostUsPerRequest: number | null, upstreamUsPerRequest: number | null }} Row
 * `hostUsPerRequest` and `upstreamUsPerRequest` divide `cpuPerRequestUs` between the front process
 * (`favn serve` or the forwarder) and the upstream (null for direct).
 */

/**
 * @typedef {import('./lib/processes.js').ServerProcess & { path: string, parts: (() => Promise<{ hostMs: number, upstreamMs: number, at: number }>) | null }} Target
 */

/**
 * The four measured paths. The `cpu` of the forwarders and of the proxy counts the front process
 * and the upstream together, as both serve its calls (and `measure` would otherwise count the
 * upstream as "other load").
 *
 * @param {import('./lib/processes.js').ServerProcess} upstream
 * @param {import('./proxy/serve-cli.js').ServeProcess} host
 * @param {import('./lib/processes.js').ServerProcess} forwarder
 * @param {import('./lib/processes.js').ServerProcess} raw
 * @returns {{ direct: Target, forwarder: Target, raw: Target, proxy: Target }}
 */
function paths(upstream, host, forwarder, raw) {
  /**
   * @param {string} name
   * @param {import('./lib/processes.js').ServerProcess} server
   * @returns {Target}
   */
  const fronted = (name, server) => {
    const parts = async () => {
      const [h, u] = await Promise.all([server.cpu(), upstream.cpu()]);
      return { hostMs: h.cpuMs, upstreamMs: u.cpuMs, at: u.at };
    };
    return {
      name,
      port: server.port,
      path: PROXY_PATH,
      cpu: async () => {
        const p = await parts();
        return { cpuMs: p.hostMs + p.upstreamMs, at: p.at };
      },
      stop: server.stop,
      parts,
    };
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
    forwarder: fronted('forwarder', forwarder),
    raw: fronted('raw', raw),
    proxy: fronted('proxy', host),
  };
}

/**
 * `measureQuietly`, plus for the forwarder and the proxy how their server CPU divides between the
 * front process and the upstream (their shares over the measurement and any repeats of it).
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

/** The per-process split of a row's server CPU, as a suffix ('' for direct). */
function split(row) {
  if (row.hostUsPerRequest === null || !Number.isFinite(row.hostUsPerRequest)) return '';
  return `  (front ${Math.round(row.hostUsPerRequest)} + upstream ${Math.round(row.upstreamUsPerRequest)} µs/req)`;
}

/**
 * Fails unless every path answers the call with the same JSON as the first (direct), byte for byte.
 *
 * @param {Target[]} targets
 */
async function checkSameAnswers(targets) {
  const answers = await Promise.all(targets.map(call));
  for (const [i, answer] of answers.entries()) {
    if (answer !== answers[0])
      throw new Error(
        `proxy: ${targets[0].name} and ${targets[i].name} answer ${RPC_BODY} differently:\n  ${targets[0].name}: ${answers[0].slice(0, 300)}\n  ${targets[i].name}: ${answer.slice(0, 300)}`,
      );
  }
  JSON.parse(answers[0]);
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
 * @param {{ direct: Row, forwarder: Row, raw: Row, proxy: Row }} summary
 */
function resultLine({ direct, forwarder, raw, proxy }) {
  return {
    bench: 'proxy',
    ratio: round(proxy.rps / direct.rps, 2),
    p99_overhead_ms: round(proxy.p99Ms - direct.p99Ms, 2),
    forwarder_ratio: round(proxy.rps / forwarder.rps, 2),
    forwarder_p99_overhead_ms: round(forwarder.p99Ms - direct.p99Ms, 2),
    proxy_vs_forwarder_p99_ms: round(proxy.p99Ms - forwarder.p99Ms, 2),
    forwarder_us_per_req: round(forwarder.hostUsPerRequest ?? NaN),
    serve_us_per_req: round(proxy.hostUsPerRequest ?? NaN),
    raw_ratio: round(proxy.rps / raw.rps, 2),
    floor_ratio: round(raw.rps / forwarder.rps, 2),
    raw_p99_overhead_ms: round(raw.p99Ms - direct.p99Ms, 2),
    raw_us_per_req: round(raw.hostUsPerRequest ?? NaN),
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
