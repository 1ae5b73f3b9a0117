/** `vite` dev as a person starts it (the CLI, in the app's folder), timed from the spawn. */
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

const VITE_BIN = fileURLToPath(new URL('../../node_modules/vite/bin/vite.js', import.meta.url));
/** Vite's own URL line, printed once it listens. */
const LOCAL_LINE = /Local:\s+http:\/\/127\.0\.0\.1:\d+/;
const STOP_TIMEOUT_MS = 15_000;

/**
 * @typedef {object} DevProcess
 * @property {string} url
 * @property {number} spawnedAt `performance.now()` when the process was spawned
 * @property {() => number | null} localAt `performance.now()` when Vite printed its "Local:" line, if it did
 * @property {() => string} output what the process printed so far (stdout and stderr, capped)
 * @property {Promise<never>} failed rejects when the process exits (it never should while in use)
 * @property {() => Promise<void>} stop SIGTERM, then SIGKILL after a while; resolves once it exited
 */

/**
 * Spawns `vite` (dev) in `dir` on a free loopback port, with `NODE_OPTIONS=--no-node-snapshot` as
 * the README tells feature repos. Returns at once: the caller polls the URL.
 *
 * @param {string} dir the app's folder
 * @returns {Promise<DevProcess>}
 */
export async function spawnViteDev(dir) {
  const port = await freePort();
  const env = { ...process.env, NODE_OPTIONS: '--no-node-snapshot', NO_COLOR: '1', FORCE_COLOR: '0' };
  const spawnedAt = performance.now();
  const child = spawn(process.execPath, [VITE_BIN, '--port', String(port), '--strictPort', '--host', '127.0.0.1'], {
    cwd: dir,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const failed = exited.then((code) => {
    throw new Error(`vite exited (${code ?? child.signalCode})`);
  });
  // Rejections of a process that exits because it was stopped go unheard.
  failed.catch(() => {});
  let out = '';
  let localAt = null;
  const onData = (data) => {
    // Only the start is kept; the call log lines that follow are dropped.
    if (out.length < 20_000) out += data;
    if (localAt === null && LOCAL_LINE.test(out)) localAt = performance.now();
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  return {
    url: `http://127.0.0.1:${port}`,
    spawnedAt,
    localAt: () => localAt,
    output: () => out,
    failed,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** A loopback port that was free a moment ago. */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}
