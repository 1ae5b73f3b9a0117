/**
 * Load generator, run as its own process so its CPU is not the server's:
 * `node bench/lib/load.js '<json config>'` prints one JSON result line on stdout.
 *
 * Config: `{ url, body, concurrency, warmupMs, durationMs, maxRequests?, timeoutMs? }`. It sends
 * `POST url` with a JSON body over keep-alive connections (`concurrency` requests in flight),
 * warms up for `warmupMs`, then measures for `durationMs`. Only loopback URLs are accepted.
 * Result: `{ ok, errors, elapsedMs, sent, rps, p50Ms, p99Ms, clientCpu, clientCpuTotalMs }`. `rps`
 * counts the 200 answers of the measurement only; `sent` counts every request including the
 * warm-up; `clientCpu` is this process's CPU time over the measurement as a share of one core;
 * `clientCpuTotalMs` is its CPU time over its whole life.
 */
import http from 'node:http';
import { quantile } from './stats.js';

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

const config = JSON.parse(process.argv[2] ?? '{}');
const url = new URL(config.url);
if (!LOOPBACK.has(url.hostname)) throw new Error(`Only loopback targets are allowed (got ${url.hostname})`);
const concurrency = config.concurrency ?? 16;
const maxRequests = config.maxRequests ?? 2_000_000;
const timeoutMs = config.timeoutMs ?? 5_000;
const body = Buffer.from(config.body ?? '{}');

const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
const options = {
  agent,
  host: url.hostname.replace(/^\[|\]$/g, ''),
  port: url.port,
  path: url.pathname + url.search,
  method: 'POST',
  headers: { 'content-type': 'application/json', 'content-length': body.length },
};

/**
 * Sends one request and resolves with its status once the whole response has arrived
 * (0 on a network error or timeout).
 *
 * @returns {Promise<number>}
 */
function once() {
  return new Promise((resolve) => {
    const req = http.request(options, (res) => {
      res.on('data', () => {});
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', () => resolve(0));
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(0));
    req.end(body);
  });
}

/**
 * Keeps `concurrency` requests in flight until `durationMs` passed or `limit` requests were sent.
 *
 * @param {number} durationMs
 * @param {number} limit
 * @param {Float64Array | null} latencies where to store each 200 answer's latency (ms)
 */
async function phase(durationMs, limit, latencies) {
  const started = performance.now();
  const deadline = started + durationMs;
  let sent = 0;
  let ok = 0;
  let errors = 0;
  async function worker() {
    while (sent < limit && performance.now() < deadline) {
      sent++;
      const t0 = performance.now();
      const status = await once();
      if (status === 200) {
        if (latencies && ok < latencies.length) latencies[ok] = performance.now() - t0;
        ok++;
      } else errors++;
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { ok, errors, elapsedMs: performance.now() - started };
}

const warmup = await phase(config.warmupMs ?? 1_000, maxRequests, null);
const latencies = new Float64Array(maxRequests);
const cpuBefore = process.cpuUsage();
const { ok, errors, elapsedMs } = await phase(config.durationMs ?? 3_000, maxRequests, latencies);
const cpu = process.cpuUsage(cpuBefore);
const life = process.cpuUsage();
const measured = latencies.subarray(0, Math.min(ok, latencies.length)).sort();
agent.destroy();

console.log(
  JSON.stringify({
    ok,
    errors,
    elapsedMs,
    sent: warmup.ok + warmup.errors + ok + errors,
    rps: (ok / elapsedMs) * 1000,
    p50Ms: quantile(measured, 0.5),
    p99Ms: quantile(measured, 0.99),
    clientCpu: (cpu.user + cpu.system) / 1000 / elapsedMs,
    clientCpuTotalMs: (life.user + life.system) / 1000,
  }),
);
