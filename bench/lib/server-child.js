/**
 * Runs one bench server in its own process: `node bench/lib/server-child.js <targets-module> <target>`.
 * The module (path relative to `bench/`) exports `targets` (name -> start function returning
 * `{ port, close }`), `RPC_PATH`, `RPC_BODY` and `RPC_RESPONSE`. The child waits until a first call
 * answers 200 with the expected body, then reports the port: as `{ type: 'ready', port }` over IPC
 * when forked, else as a line on stdout. Over IPC it answers `{ type: 'cpu' }` with its CPU time.
 * It stops on `{ type: 'stop' }`, when the parent goes away, on SIGINT/SIGTERM, or after
 * `BENCH_SERVER_MAX_MS` (default 5 minutes).
 */
import { setTimeout as sleep } from 'node:timers/promises';

const [modulePath, targetName] = process.argv.slice(2);
const READY_TIMEOUT_MS = 30_000;
const MAX_LIFETIME_MS = Number(process.env.BENCH_SERVER_MAX_MS) || 5 * 60_000;

const mod = await import(new URL(`../${modulePath}`, import.meta.url).href);
const start = mod.targets[targetName];
if (!start) throw new Error(`Unknown target "${targetName}" in ${modulePath}`);
const running = await start();
await waitUntilServing(`http://127.0.0.1:${running.port}${mod.RPC_PATH}`, mod.RPC_BODY, mod.RPC_RESPONSE);

let stopping = false;
/** Closes the server and exits (exiting normally lets `--cpu-prof` write its profile). */
async function stop() {
  if (stopping) return;
  stopping = true;
  await Promise.race([running.close(), sleep(5_000)]);
  process.exit(0);
}
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
process.on('disconnect', stop);
setTimeout(stop, MAX_LIFETIME_MS).unref();
// Keep the process alive for the lifetime cap even if the server holds no ref'd handle.
const keepAlive = setInterval(() => {}, 60_000);
process.once('exit', () => clearInterval(keepAlive));

if (process.send) {
  process.on('message', (message) => {
    if (message?.type === 'cpu') process.send({ type: 'cpu', usage: process.cpuUsage(), at: performance.now() });
    if (message?.type === 'stop') void stop();
  });
  process.send({ type: 'ready', port: running.port });
} else {
  console.log(
    JSON.stringify({ target: targetName, port: running.port, url: `http://127.0.0.1:${running.port}${mod.RPC_PATH}` }),
  );
}

/**
 * Calls the route until it answers 200 with the expected body (bounded by READY_TIMEOUT_MS).
 *
 * @param {string} url
 * @param {string} body
 * @param {string} expected
 */
async function waitUntilServing(url, body, expected) {
  const deadline = performance.now() + READY_TIMEOUT_MS;
  let last = 'no answer';
  while (performance.now() < deadline) {
    try {
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
        signal: AbortSignal.timeout(5_000),
      });
      const text = await res.text();
      if (res.status === 200 && text === expected) return;
      last = `${res.status} ${text.slice(0, 200)}`;
    } catch (error) {
      last = String(error);
    }
    await sleep(100);
  }
  throw new Error(`${targetName} did not serve ${url} within ${READY_TIMEOUT_MS} ms (last: ${last})`);
}
