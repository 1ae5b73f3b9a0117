/** Starts bench servers and load generators as child processes. */
import { execFile, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const SERVER_CHILD = fileURLToPath(new URL('./server-child.js', import.meta.url));
const LOAD_CHILD = fileURLToPath(new URL('./load.js', import.meta.url));
const START_TIMEOUT_MS = 60_000;

/**
 * @typedef {object} ServerProcess
 * @property {string} name
 * @property {number} port
 * @property {() => Promise<{ cpuMs: number, at: number }>} cpu the server's CPU time so far
 * @property {() => Promise<void>} stop
 */

/**
 * Forks `server-child.js` for one target and waits until it serves.
 *
 * @param {string} modulePath targets module, relative to `bench/`
 * @param {string} name target name
 * @returns {Promise<ServerProcess>}
 */
export function startServer(modulePath, name) {
  const child = fork(SERVER_CHILD, [modulePath, name], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill();
      reject(new Error(`${name} did not start within ${START_TIMEOUT_MS} ms`));
    }, START_TIMEOUT_MS);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} server exited with code ${code} before it was ready`));
    });
    child.once('message', (message) => {
      clearTimeout(timer);
      resolve({
        name,
        port: message.port,
        cpu: () => ask(child, 'cpu').then((m) => ({ cpuMs: (m.usage.user + m.usage.system) / 1000, at: m.at })),
        stop: async () => {
          if (child.connected) child.send({ type: 'stop' });
          const timeout = setTimeout(() => child.kill('SIGKILL'), 10_000);
          await exited;
          clearTimeout(timeout);
        },
      });
    });
  });
}

/**
 * Sends `{ type }` to a child and resolves with its next message of that type.
 *
 * @param {import('node:child_process').ChildProcess} child
 * @param {string} type
 */
function ask(child, type) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`No "${type}" answer from the server`)), 5_000);
    const onMessage = (message) => {
      if (message?.type !== type) return;
      clearTimeout(timer);
      child.off('message', onMessage);
      resolve(message);
    };
    child.on('message', onMessage);
    child.send({ type });
  });
}

/**
 * Runs `load.js` with a config and returns its parsed result line.
 *
 * @param {object} config see `load.js`
 * @returns {Promise<{ ok: number, errors: number, elapsedMs: number, rps: number, p50Ms: number, p99Ms: number, clientCpu: number }>}
 */
export function runLoad(config) {
  const limit = (config.warmupMs ?? 1_000) + (config.durationMs ?? 3_000) + 20_000;
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [LOAD_CHILD, JSON.stringify(config)],
      { timeout: limit, maxBuffer: 1 << 20 },
      (error, stdout, stderr) => {
        if (error) return reject(new Error(`Load generator failed: ${error.message}\n${stderr}`));
        resolve(JSON.parse(stdout.trim().split('\n').pop()));
      },
    );
  });
}
