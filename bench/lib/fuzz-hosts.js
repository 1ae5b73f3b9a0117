/**
 * The two hosts the fuzzer attacks, each in its own process so its memory can be read from
 * `/proc/<pid>/status`: `favn serve` over built copies of `fixtures/handlers` and `fixtures/crud`,
 * and the `vite` dev server (the plugin's host) on the copy of `fixtures/handlers`. Both are
 * started the way users start them: the CLI, with only the `--no-node-snapshot` flag
 * isolated-vm needs.
 */
import { execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { cp, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const VITE_BIN = path.join(REPO_ROOT, 'node_modules', 'vite', 'bin', 'vite.js');
const FAVN_BIN = path.join(REPO_ROOT, 'dist', 'devserver', 'cli.js');
const GC_PRELOAD = fileURLToPath(new URL('./fuzz-gc-preload.cjs', import.meta.url));
const START_TIMEOUT_MS = 90_000;
/** A fresh PGlite database takes its time on a busy machine (initdb): the first call may wait long. */
const READY_TIMEOUT_MS = 180_000;
const BUILD_TIMEOUT_MS = 120_000;

/** The two hosts, in the order they run. */
export const HOST_NAMES = /** @type {const} */ (['serve', 'vite']);

/**
 * Generous rate limits for the copies: the fuzzer is one anonymous caller, and the spec's defaults
 * (100 queries a minute) would answer almost every valid call with 429 and leave the functions
 * unexercised. Actions keep a low limit so that 429 answers are still part of the mix.
 */
const FUZZ_RATE_LIMITS = {
  queryRows: 100_000,
  insertRow: 100_000,
  patchRow: 100_000,
  deleteRow: 100_000,
  query: 100_000,
  mutation: 100_000,
  action: 60,
  plain: 100_000,
};

/**
 * @typedef {object} Fixtures
 * @property {string} work scratch folder holding everything below (removed by `remove`)
 * @property {string} handlers built copy of fixtures/handlers (vite dev runs here too)
 * @property {string} crud built copy of fixtures/crud
 * @property {string} marker a secret value that no response may ever contain
 * @property {string[]} assets client files of the handlers build, as `/feature-handlers/...` paths
 * @property {() => Promise<void>} remove
 */

/**
 * Copies the fixtures into a scratch folder inside the repo (so the package resolves by its own
 * name), plants a secret marker and builds them with the real `vite build`.
 *
 * @returns {Promise<Fixtures>}
 */
export async function prepareFixtures() {
  const work = path.join(REPO_ROOT, 'fixtures', '.work', `fuzz-${randomUUID().slice(0, 8)}`);
  const marker = `fuzz-secret-${randomUUID()}`;
  const handlers = path.join(work, 'handlers');
  const crud = path.join(work, 'crud');
  await mkdir(work, { recursive: true });
  await cp(path.join(REPO_ROOT, 'fixtures', 'handlers'), handlers, { recursive: true });
  await cp(path.join(REPO_ROOT, 'fixtures', 'crud'), crud, { recursive: true });
  for (const dir of [handlers, crud]) {
    const file = path.join(dir, 'feature.json');
    const manifest = JSON.parse(await readFile(file, 'utf8'));
    await writeFile(file, JSON.stringify({ ...manifest, rateLimits: FUZZ_RATE_LIMITS }, null, 2));
  }
  // The dev host reads secrets from .env.local: the marker must never come back in a response.
  await writeFile(path.join(handlers, '.env.local'), `API_KEY=${marker}\n`);
  await Promise.all([viteBuild(handlers), viteBuild(crud)]);
  const built = await readdir(path.join(handlers, 'dist'), { recursive: true, withFileTypes: true });
  const assets = built
    .filter((e) => e.isFile())
    .map(
      (e) =>
        `/feature-handlers/${path.relative(path.join(handlers, 'dist'), path.join(e.parentPath ?? e.path, e.name))}`,
    );
  return { work, handlers, crud, marker, assets, remove: () => rm(work, { recursive: true, force: true }) };
}

function viteBuild(root) {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [VITE_BIN, 'build', '--logLevel', 'warn'],
      { cwd: root, timeout: BUILD_TIMEOUT_MS, env: { ...process.env, NO_COLOR: '1' } },
      (error, _stdout, stderr) => {
        if (error) reject(new Error(`vite build failed in ${root}: ${error.message}\n${stderr}`));
        else resolve(undefined);
      },
    );
  });
}

/**
 * @typedef {object} HostProcess
 * @property {string} name
 * @property {number} pid
 * @property {number} port
 * @property {() => string} output what the host printed so far (last 64 KiB)
 * @property {() => Promise<{ isolates: number, idle: number, peak: number, waiting: number, max: number } | null>} isolates
 *   the handlers feature's isolate pool, from `/_admin`
 * @property {() => Promise<{ file: string } | null>} memoryReport with `gc`: collect garbage in the host and write its memory breakdown
 * @property {() => Promise<void>} stop
 */

/**
 * Starts one host as users do and waits until it prints its URL.
 *
 * @param {'serve' | 'vite'} name
 * @param {Fixtures} fixtures
 * @param {{ gc?: boolean, nodeOptions?: string[], favnMalloc?: boolean }} [options] `gc`: expose `gc()` and a memory
 *   report on SIGUSR2 (diagnostics only); `favnMalloc`: `vite` too with the favn binary's malloc settings
 * @returns {Promise<HostProcess>}
 */
export async function startHost(name, fixtures, options = {}) {
  const reportFile = path.join(fixtures.work, `${name}-memory.json`);
  const flags = ['--no-node-snapshot', ...(options.nodeOptions ?? [])];
  if (options.gc) flags.push('--expose-gc', '--require', GC_PRELOAD);
  const runDir = path.join(fixtures.work, `${name}-run`);
  await mkdir(runDir, { recursive: true });
  // Both features load before it listens: the memory read after the warm-up is then that of loaded
  // features, whichever the random warm-up happened to call (loading on first request has its own tests).
  if (name === 'serve') await writeFile(path.join(runDir, 'favn.config.json'), JSON.stringify({ load: 'start' }));
  const serveArgs = ['serve', fixtures.handlers, fixtures.crud, '--config', 'favn.config.json'];
  const [args, cwd] =
    name === 'serve'
      ? [[FAVN_BIN, ...serveArgs, '--port', '0', '--host', '127.0.0.1'], runDir]
      : [[VITE_BIN, '--port', '0', '--host', '127.0.0.1', '--strictPort=false'], fixtures.handlers];
  const adminToken = `fuzz-admin-${randomUUID()}`;
  const env = {
    ...process.env,
    NO_COLOR: '1',
    FORCE_COLOR: '0',
    FAVN_FUZZ_MEMORY_FILE: reportFile,
    FAVN_SECRET_FEATURE_HANDLERS__API_KEY: fixtures.marker,
    FAVN_ADMIN_TOKEN: adminToken,
  };
  // `favn serve` is started as its binary starts itself: with the variables its shebang sets;
  // `vite` as users start it, unless asked to take the same (`--favn-malloc`).
  if (name === 'serve' || options.favnMalloc) Object.assign(env, await shebangEnv(FAVN_BIN));
  const child = spawn(process.execPath, [...flags, ...args], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const keep = (chunk) => {
    out += chunk;
    if (out.length > 65_536) out = out.slice(-65_536);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  // Never leave a host behind, whatever ends the fuzzer.
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  void exited.then(() => process.off('exit', killOnExit));
  const pattern =
    name === 'serve' ? /favn serve: http:\/\/127\.0\.0\.1:(\d+)\// : /Local:\s+http:\/\/127\.0\.0\.1:(\d+)\//;
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${name} did not start within ${START_TIMEOUT_MS} ms:\n${out}`));
    }, START_TIMEOUT_MS);
    const check = () => {
      const match = pattern.exec(out);
      if (!match) return;
      clearTimeout(timer);
      child.stdout.off('data', check);
      resolve(Number(match[1]));
    };
    child.stdout.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code}) before it served:\n${out}`));
    });
  });
  try {
    await waitUntilServing(name, port, () => out);
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  return {
    name,
    pid: /** @type {number} */ (child.pid),
    port,
    output: () => out,
    async isolates() {
      try {
        const res = await fetch(`http://127.0.0.1:${port}/_admin`, {
          headers: { accept: 'application/json', authorization: `Bearer ${adminToken}` },
          signal: AbortSignal.timeout(10_000),
        });
        const report = await res.json();
        const feature = report.features?.find((f) => f.featureId === 'feature-handlers');
        return feature?.isolates ?? null;
      } catch {
        return null;
      }
    },
    async memoryReport() {
      if (!options.gc) return null;
      await rm(reportFile, { force: true });
      child.kill('SIGUSR2');
      for (let i = 0; i < 100; i++) {
        await sleep(100);
        try {
          return { file: reportFile, ...JSON.parse(await readFile(reportFile, 'utf8')) };
        } catch {
          // Not written yet.
        }
      }
      return null;
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/**
 * Waits until a handler call answers 200: the dev host loads the feature (and opens its
 * database) after it listens, `favn serve` opens the database on the first call.
 */
async function waitUntilServing(name, port, output) {
  const deadline = performance.now() + READY_TIMEOUT_MS;
  let last = 'no answer';
  while (performance.now() < deadline) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/rpc/feature-handlers/version`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"args":[]}',
        signal: AbortSignal.timeout(Math.max(1, Math.ceil(deadline - performance.now()))),
      });
      const text = await res.text();
      if (res.status === 200) return;
      last = `${res.status} ${text.slice(0, 200)}`;
    } catch (error) {
      last = String(error);
    }
    await sleep(200);
  }
  throw new Error(`${name} did not serve a valid call within ${READY_TIMEOUT_MS} ms (last: ${last}):\n${output()}`);
}

/**
 * Starts and stops each host once, so the measured run opens an existing database the way a
 * host does on every start but the first (a fresh PGlite database costs hundreds of MB during
 * initdb that are freed only later, which would hide growth).
 *
 * @param {('serve' | 'vite')[]} names
 * @param {Fixtures} fixtures
 */
export async function primeHosts(names, fixtures) {
  for (const name of names) {
    const host = await startHost(name, fixtures);
    await host.stop();
  }
}

/**
 * The `NAME=value` assignments of a script's `#!/usr/bin/env -S ...` line.
 *
 * @param {string} file
 * @returns {Promise<Record<string, string>>}
 */
async function shebangEnv(file) {
  const first = (await readFile(file, 'utf8')).split('\n', 1)[0] ?? '';
  return Object.fromEntries([...first.matchAll(/\s([A-Z_][A-Z0-9_]*)=(\S+)/g)].map((m) => [m[1], m[2]]));
}
