/**
 * Relay bench: what a call costs when the feature runs in a sandboxed iframe and the host page
 * relays it, against the same call from the feature page at top level. One built feature
 * (`echo`, a trivial plain function) under the real `favn serve` CLI; one Chromium:
 *
 * - `direct`: the feature page at `/{featureId}/`, top level; the client calls over `fetch`;
 * - `relay`: the `favn serve` shell (`/_shell`), the same page in an `allow-scripts` iframe (opaque
 *   origin); the client posts each call on its port, the host page's relay makes the same `fetch`
 *   and posts the answer back.
 *
 * Calls are sequential (one in flight), timed in the feature page with `performance.now()` around
 * the proxy call. After an unmeasured warm-up per path, rounds interleave the two (the order
 * alternates); a path's p50/p99 are over all its measured calls. The last line printed is one JSON
 * object.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { quantile, round } from './lib/stats.js';
import { machine } from './lib/system.js';

/** Measurement settings (loopback only). */
export const SETTINGS = { warmupCalls: 300, rounds: 6, callsPerRound: 300 };

/** Goal the result is reported against (not asserted). */
const TARGET_OVERHEAD_P50_MS = 1;

const REPO = fileURLToPath(new URL('..', import.meta.url));
const CLI = path.join(REPO, 'dist', 'devserver', 'cli.js');
const VITE_BIN = path.join(REPO, 'node_modules', 'vite', 'bin', 'vite.js');
const FEATURE_ID = 'feature-bench-relay';
const READY_LINE = /favn serve: (http:\/\/\S+?)\/\n/;

/** Runs the bench and prints its lines. */
export async function run() {
  const { warmupCalls, rounds, callsPerRound } = SETTINGS;
  console.log(`relay: ${FEATURE_ID}/echo(i) from the feature page, top level vs in the favn serve shell's iframe`);
  console.log(`relay: ${machine()}`);
  console.log(`relay: ${warmupCalls} warm-up calls per path, ${rounds} rounds of ${callsPerRound} sequential calls`);
  // Inside the repository, so the feature resolves the package by its own name.
  const dir = path.join(REPO, '.scratch', `bench-relay-${randomUUID().slice(0, 8)}`);
  let serve;
  let browser;
  try {
    await buildFeature(dir);
    serve = await startServe(dir);
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
    const direct = await browser.newPage();
    await direct.goto(`${serve.url}/${FEATURE_ID}/`);
    const shell = await browser.newPage();
    await shell.goto(`${serve.url}/_shell?feature=${FEATURE_ID}`);
    const paths = { direct, relay: await featureFrame(shell) };
    for (const [name, target] of Object.entries(paths)) {
      const answer = await target.evaluate(() => window.benchCall(7));
      if (JSON.stringify(answer) !== '{"echo":7}')
        throw new Error(`${name}: unexpected answer ${JSON.stringify(answer)}`);
      await target.evaluate((n) => window.benchTimes(n), warmupCalls);
    }
    const times = { direct: [], relay: [] };
    for (let r = 1; r <= rounds; r++) {
      const order = r % 2 ? ['direct', 'relay'] : ['relay', 'direct'];
      for (const name of order) {
        const ms = await paths[name].evaluate((n) => window.benchTimes(n), callsPerRound);
        times[name].push(...ms);
        const sorted = [...ms].sort((a, b) => a - b);
        console.log(
          `  round ${r} ${name.padEnd(6)} p50 ${quantile(sorted, 0.5).toFixed(3)} ms  p99 ${quantile(sorted, 0.99).toFixed(3)} ms`,
        );
      }
    }
    const figures = Object.fromEntries(
      Object.entries(times).map(([name, ms]) => {
        const sorted = ms.sort((a, b) => a - b);
        return [name, { p50: quantile(sorted, 0.5), p99: quantile(sorted, 0.99) }];
      }),
    );
    for (const [name, { p50, p99 }] of Object.entries(figures)) {
      console.log(`${name.padEnd(6)} all  p50 ${p50.toFixed(3)} ms  p99 ${p99.toFixed(3)} ms`);
    }
    const overhead = figures.relay.p50 - figures.direct.p50;
    console.log(`relay: overhead p50 ${overhead.toFixed(3)} ms (target <= ${TARGET_OVERHEAD_P50_MS} ms)`);
    console.log(
      JSON.stringify({
        bench: 'relay',
        direct_p50_ms: round(figures.direct.p50, 3),
        relay_p50_ms: round(figures.relay.p50, 3),
        overhead_p50_ms: round(overhead, 3),
        direct_p99_ms: round(figures.direct.p99, 3),
        relay_p99_ms: round(figures.relay.p99, 3),
      }),
    );
  } finally {
    await browser?.close();
    await serve?.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

/** Writes and builds the bench feature: one trivial function and a page that times calls of it. */
async function buildFeature(dir) {
  await mkdir(path.join(dir, 'src'), { recursive: true });
  const manifest = {
    id: FEATURE_ID,
    version: '1.0.0',
    serverFunctions: { module: 'server-functions.js', exports: ['echo'] },
    // The limiter still runs on every call, but never refuses one of the bench.
    rateLimits: { plain: { limit: 1_000_000, windowSec: 1 } },
  };
  await writeFile(path.join(dir, 'feature.json'), JSON.stringify(manifest));
  await writeFile(
    path.join(dir, 'index.html'),
    '<!doctype html><html><body><p>relay bench</p><script type="module" src="./src/main.js"></script></body></html>',
  );
  await writeFile(
    path.join(dir, 'src', 'bench.server.js'),
    'export async function echo(ctx, value) { return { echo: value }; }\n',
  );
  await writeFile(
    path.join(dir, 'src', 'main.js'),
    `import { echo } from './bench.server.js';
window.benchCall = (value) => echo(value);
window.benchTimes = async (n) => {
  const times = [];
  for (let i = 0; i < n; i++) {
    const started = performance.now();
    await echo(i);
    times.push(performance.now() - started);
  }
  return times;
};
`,
  );
  await writeFile(
    path.join(dir, 'vite.config.js'),
    "import serverFns from '@favn/vite-plugin-server-fns';\nexport default { base: './', plugins: [serverFns()] };\n",
  );
  const vite = spawn(process.execPath, [VITE_BIN, 'build', '--logLevel', 'warn'], { cwd: dir, stdio: 'inherit' });
  const code = await new Promise((resolve) => vite.once('exit', resolve));
  if (code !== 0) throw new Error(`vite build of the bench feature exited with ${code}`);
}

/** The real `favn serve` CLI on the built feature; resolves once it prints its URL. */
async function startServe(dir) {
  const child = spawn(
    process.execPath,
    ['--no-node-snapshot', CLI, 'serve', dir, '--port', '0', '--host', '127.0.0.1'],
    {
      cwd: dir,
      env: { ...process.env, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  child.stderr.on('data', (data) => out.length < 10_000 && (out += data));
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`favn serve did not start:\n${out}`)), 30_000);
    child.stdout.on('data', (data) => {
      // Only the start matters; the call log lines that follow are dropped.
      if (out.length < 10_000) out += data;
      const match = READY_LINE.exec(out);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    child.once('exit', (code) => reject(new Error(`favn serve exited with ${code}:\n${out}`)));
  });
  return {
    url,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/** The feature's frame in the shell, once its page has loaded. */
async function featureFrame(page) {
  for (const until = Date.now() + 20_000; Date.now() < until;) {
    const frame = page.frames().find((f) => f !== page.mainFrame());
    if (frame && (await frame.evaluate(() => typeof window.benchTimes === 'function').catch(() => false))) return frame;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('the bench feature did not load in the shell');
}
