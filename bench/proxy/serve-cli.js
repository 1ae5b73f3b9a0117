/**
 * Runs the real `favn serve` CLI (`dist/devserver/cli.js serve`) in its own process, hosting one
 * endpoint-mode feature that forwards to an upstream, and exposes it the way `startServer` does
 * (`name`, `port`, `cpu`, `stop`) so `lib/measure.js` can drive it.
 *
 * Its config (`favn.config.json`) and the feature's manifest (`ep/feature.json`) are written to a
 * fresh temporary folder, which is also its working directory (so it finds no `.env.local`); `stop` removes the folder. Its
 * stdout and stderr (the URL line, then one line per call) go to a file in that folder, so the
 * bench's own process does not wake up for every call's log line.
 *
 * Its CPU time is read from `/proc/{pid}/stat` (Linux; elsewhere `cpu()` reports NaN).
 * With `BENCH_PROXY_CPU_PROF=<dir>` it runs with `--cpu-prof` and writes its profile into `<dir>`
 * when it stops.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, rmSync } from 'node:fs';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { FEATURE_ID, FN_NAME } from './targets.js';

const CLI = fileURLToPath(new URL('../../dist/devserver/cli.js', import.meta.url));
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 10_000;
/** Clock ticks per second of `/proc/{pid}/stat` (USER_HZ, 100 on Linux). */
const TICKS_PER_SECOND = 100;
const READY_LINE = /favn serve: (http:\/\/\S+?)\/\n/;
/**
 * `favn serve` limits each feature's calls per installation (by default 100 plain calls a minute);
 * the bench lifts the limit of its feature's (plain) function as far as a manifest allows, so the
 * limiter still runs on every call but never refuses one.
 */
const NO_RATE_LIMIT = { plain: { limit: 1_000_000, windowSec: 1 } };

/**
 * @typedef {import('../lib/processes.js').ServerProcess & { pid: number, output: () => string, spawnedAt: number, readyAt: number }} ServeProcess
 */

/**
 * Writes the config for an endpoint feature forwarding to `http://127.0.0.1:{upstreamPort}/rpc`,
 * starts `favn serve --port 0 --host 127.0.0.1` on it and waits for the URL it prints.
 *
 * @param {number} upstreamPort
 * @param {string} [name]
 * @returns {Promise<ServeProcess>}
 */
export async function startServeCli(upstreamPort, name = 'proxy') {
  if (!existsSync(CLI)) throw new Error(`${path.relative(process.cwd(), CLI)} is missing: run "npm run build" first`);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'favn-bench-proxy-'));
  try {
    await mkdir(path.join(dir, 'ep'));
    const manifest = {
      id: FEATURE_ID,
      serverFunctions: { endpoint: `http://127.0.0.1:${upstreamPort}/rpc`, exports: [FN_NAME] },
      rateLimits: NO_RATE_LIMIT,
    };
    await writeFile(path.join(dir, 'ep', 'feature.json'), JSON.stringify(manifest));
    await writeFile(
      path.join(dir, 'favn.config.json'),
      JSON.stringify({ features: [{ manifest: 'ep/feature.json' }] }),
    );
    return await spawnServe(dir, name);
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

/**
 * Starts `favn serve --config favn.config.json --port 0 --host 127.0.0.1` in `dir` (which holds the
 * config) and waits for the URL it prints. `stop` removes `dir` (unless `keepDir`). `spawnedAt` and `readyAt`
 * (`performance.now()` of this process) time the start, to within the 10 ms the output is polled at.
 *
 * @param {string} dir the temporary folder holding the config
 * @param {string} name
 * @param {{ startTimeoutMs?: number, keepDir?: boolean }} [options]
 * @returns {Promise<ServeProcess>}
 */
export async function spawnServe(dir, name, { startTimeoutMs = START_TIMEOUT_MS, keepDir = false } = {}) {
  const logFile = path.join(dir, 'serve.log');
  const log = openSync(logFile, 'w');
  const profileDir = process.env.BENCH_PROXY_CPU_PROF;
  const profile = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(profileDir)}`] : [];
  const args = [
    '--no-node-snapshot',
    ...profile,
    CLI,
    'serve',
    '--config',
    'favn.config.json',
    '--port',
    '0',
    '--host',
    '127.0.0.1',
  ];
  // Without DATABASE_URL it keeps its rate-limit counts in memory rather than in PostgreSQL.
  const env = { ...process.env, NO_COLOR: '1' };
  delete env.DATABASE_URL;
  const spawnedAt = performance.now();
  const child = spawn(process.execPath, args, { cwd: dir, env, stdio: ['ignore', log, log] });
  closeSync(log);
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code)));
  // Never leave it (or its folder) behind the bench, even when the bench fails.
  const killOnExit = () => {
    child.kill('SIGKILL');
    if (!keepDir) rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', killOnExit);
  const output = () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '');
  const tail = () => output().slice(-2_000);

  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      await exited;
      clearTimeout(timer);
    }
    process.off('exit', killOnExit);
    if (!keepDir) await rm(dir, { recursive: true, force: true });
  };

  try {
    const url = await waitForUrl(output, exited, startTimeoutMs);
    return {
      spawnedAt,
      readyAt: performance.now(),
      name,
      port: Number(new URL(url).port),
      pid: /** @type {number} */ (child.pid),
      cpu: async () => ({ cpuMs: processCpuMs(/** @type {number} */ (child.pid)), at: performance.now() }),
      output,
      stop,
    };
  } catch (error) {
    const last = tail();
    await stop();
    throw new Error(`favn serve did not start: ${error instanceof Error ? error.message : String(error)}\n${last}`);
  }
}

/**
 * Polls the output for the URL line until it appears, the process exits or the time runs out.
 *
 * @param {() => string} output
 * @param {Promise<unknown>} exited
 * @param {number} timeoutMs
 * @returns {Promise<string>}
 */
async function waitForUrl(output, exited, timeoutMs) {
  let exit;
  void exited.then((how) => (exit = how));
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    const match = READY_LINE.exec(output());
    if (match) return match[1];
    if (exit !== undefined) throw new Error(`it exited (${exit})`);
    await sleep(10);
  }
  throw new Error(`no URL within ${timeoutMs} ms`);
}

/**
 * User + system CPU time of a process so far, in ms (NaN without `/proc`).
 *
 * @param {number} pid
 */
function processCpuMs(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The fields after the command name (which may hold spaces) start with the state (field 3);
    // utime and stime are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SECOND;
  } catch {
    return NaN;
  }
}
