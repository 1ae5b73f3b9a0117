/**
 * Scale bench: how `favn serve` (the real CLI, in its own process) copes with many features. One
 * feature with a table, two isolate handlers and a plain function (`scale/feature/`) is built once
 * with `vite build` and copied under N ids (`lib/scale-copies.js`); `favn serve` serves all N from
 * a `favn.config.json`, with its PGlite database in its working folder (no DATABASE_URL). Per N it
 * starts twice: on a fresh folder (`fresh_start_ms`: PGlite creates its database, every feature
 * creates its tables), then again on the same folder, as a deployment restarts:
 *
 * - `start_ms`: spawn to the URL line `favn serve` prints once it listens (`health_ms`: to the
 *   first 200 of `GET /_health` listing all N features), on the restart;
 * - `rss_mb`: its resident memory (`/proc/{pid}/status`) idle after the start, then after one call
 *   per feature (`rss_after_calls_mb`);
 * - `first_call_p50_ms`: the first call of each feature (`listNotes`, a query handler reading the
 *   feature's table), one at a time, p50 (and p99) over the features; `warm_call_p50_ms`: a second
 *   call of each, for comparison.
 *
 * `favn serve` loads each feature on its first call (its files are checked at start), so the fresh
 * start is followed by one call per feature (`fresh_first_call_p50_ms`: PGlite creates its
 * database on the first, each creates its feature's tables), and the restart's first calls find
 * the tables in place.
 *
 * Prints a line per N; the last line printed is one JSON object for the largest N.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { buildFeature, writeCopies } from './lib/scale-copies.js';
import { quantile, round } from './lib/stats.js';
import { machine } from './lib/system.js';
import { spawnServe } from './proxy/serve-cli.js';

/** Feature counts, smallest first; the last one is the final line. */
export const SETTINGS = { counts: [100, 500], startTimeoutMs: 150_000, idleMs: 2_000, callTimeoutMs: 30_000 };

const FN = 'listNotes';
const BODY = JSON.stringify({ args: [] });

/** Runs the bench and prints its lines. */
export async function run() {
  const { counts } = SETTINGS;
  console.log(`scale: favn serve over N copies of one built feature (table + handlers), N = ${counts.join(', ')}`);
  console.log(`scale: ${machine()}`);
  const built = await buildFeature();
  console.log(`scale: vite build of the bench feature in ${Math.round(built)} ms`);
  let last;
  for (const count of counts) {
    last = await measureCount(count);
    console.log(
      `scale: ${count} features: start ${last.start_ms} ms (health ${last.health_ms} ms, cpu ${last.start_cpu_ms} ms); ` +
        `on a fresh folder ${last.fresh_start_ms} ms (cpu ${last.fresh_start_cpu_ms} ms, rss ${last.fresh_rss_mb} MB, ` +
        `first call p50 ${last.fresh_first_call_p50_ms} ms); ` +
        `rss idle ${last.rss_mb} MB, after one call each ${last.rss_after_calls_mb} MB; ` +
        `first call p50 ${last.first_call_p50_ms} ms p99 ${last.first_call_p99_ms} ms; warm call p50 ${last.warm_call_p50_ms} ms`,
    );
    console.log(JSON.stringify(last));
  }
}

/**
 * Starts `favn serve` over `count` copies twice: on a fresh folder (PGlite creates its database,
 * every feature migrates its tables), then again on the same folder (the database and tables
 * exist), as a deployment restarts. Memory and calls are measured on the restarted process.
 *
 * @param {number} count
 */
async function measureCount(count) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'favn-bench-scale-'));
  try {
    const ids = await writeCopies(dir, count);
    const fresh = await startOnce(dir, count, async (serve) => {
      const first = [];
      for (const id of ids) first.push(await timedCall(serve.port, id));
      return { first: sorted(first) };
    });
    const again = await startOnce(dir, count, async (serve) => {
      await sleep(SETTINGS.idleMs);
      const rssIdle = rssMb(serve.pid);
      const first = [];
      for (const id of ids) first.push(await timedCall(serve.port, id));
      const rssAfter = rssMb(serve.pid);
      const warm = [];
      for (const id of ids) warm.push(await timedCall(serve.port, id));
      return { rssIdle, rssAfter, first: sorted(first), warm: sorted(warm) };
    });
    const { rssIdle, rssAfter, first, warm } = again.measured;
    return {
      bench: 'scale',
      features: count,
      start_ms: again.startMs,
      health_ms: again.healthMs,
      start_cpu_ms: again.cpuMs,
      fresh_start_ms: fresh.startMs,
      fresh_start_cpu_ms: fresh.cpuMs,
      fresh_rss_mb: fresh.rssMb,
      fresh_first_call_p50_ms: round(quantile(fresh.measured.first, 0.5), 2),
      rss_mb: round(rssIdle, 1),
      rss_after_calls_mb: round(rssAfter, 1),
      first_call_p50_ms: round(quantile(first, 0.5), 2),
      first_call_p99_ms: round(quantile(first, 0.99), 2),
      warm_call_p50_ms: round(quantile(warm, 0.5), 2),
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * One start of `favn serve` in `dir`: its start time (to the URL line, and to `/_health` listing
 * every feature), its CPU time and memory then, and whatever `measure` finds before it stops.
 *
 * @template T
 * @param {string} dir
 * @param {number} count
 * @param {(serve: import('./proxy/serve-cli.js').ServeProcess) => Promise<T>} measure
 */
async function startOnce(dir, count, measure) {
  const serve = await spawnServe(dir, `scale-${count}`, { startTimeoutMs: SETTINGS.startTimeoutMs, keepDir: true });
  try {
    const startMs = Math.round(serve.readyAt - serve.spawnedAt);
    await waitForHealth(serve.port, count);
    const healthMs = Math.round(performance.now() - serve.spawnedAt);
    const cpuMs = Math.round((await serve.cpu()).cpuMs);
    const rss = round(rssMb(serve.pid), 1);
    return { startMs, healthMs, cpuMs, rssMb: rss, measured: await measure(serve) };
  } catch (error) {
    throw new Error(
      `scale: ${count} features: ${error instanceof Error ? error.message : String(error)}\n${serve.output().slice(-2_000)}`,
    );
  } finally {
    await serve.stop();
  }
}

/** Ascending copy of some numbers. */
function sorted(values) {
  return Float64Array.from(values).sort();
}

/**
 * Polls `GET /_health` until it answers 200 listing `count` features, none with an error.
 *
 * @param {number} port
 * @param {number} count
 */
async function waitForHealth(port, count) {
  const deadline = performance.now() + SETTINGS.startTimeoutMs;
  let last = 'no answer';
  while (performance.now() < deadline) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/_health`);
      const body = await res.json();
      const broken = body.features?.find((f) => f.error);
      if (broken) throw new Error(`/_health: ${broken.featureId}: ${broken.error}`);
      if (res.status === 200 && body.features?.length === count) return;
      last = `${res.status}, ${body.features?.length} features`;
    } catch (error) {
      if (String(error).includes('/_health:')) throw error;
      last = String(error);
    }
    await sleep(10);
  }
  throw new Error(`/_health did not list ${count} features (last: ${last})`);
}

/**
 * One `listNotes` call of a feature, which must answer 200 with an array; its latency in ms.
 *
 * @param {number} port
 * @param {string} id
 */
async function timedCall(port, id) {
  const started = performance.now();
  const res = await fetch(`http://127.0.0.1:${port}/rpc/${id}/${FN}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: BODY,
    signal: AbortSignal.timeout(SETTINGS.callTimeoutMs),
  });
  const text = await res.text();
  const ms = performance.now() - started;
  if (res.status !== 200 || !Array.isArray(JSON.parse(text)))
    throw new Error(`${id}/${FN} answered ${res.status} ${text.slice(0, 300)}`);
  return ms;
}

/**
 * Resident memory of a process in MB (`VmRSS` of `/proc/{pid}/status`; NaN without it).
 *
 * @param {number} pid
 */
function rssMb(pid) {
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}
