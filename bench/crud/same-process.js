/**
 * The host against its floor (`hono-stmt`) with the process taken out of the comparison: both
 * served from ONE process over ONE in-memory PGlite (seeded like the bench's servers), each on its
 * own loopback port, loaded in turn by a minimal HTTP/1.1 client over raw sockets in the same
 * process (8 keep-alive connections, one request in flight on each).
 * `node bench/crud/same-process.js [query|list|insert] [rounds]`.
 *
 * Per target it prints the process CPU time per call (the client's share is the same for both),
 * and the time per call inside PGlite's synchronous backend call (`execProtocolRawSync`), which
 * gets the same bytes from both targets: where that differs, the code around the call, not the
 * call, makes the difference. Rounds of 2000 calls interleave (after 8000 unmeasured calls each);
 * medians and lower quartiles over the rounds. Before measuring, both must answer the workload's
 * first call alike.
 */
import net from 'node:net';
import { serve } from '@hono/node-server';
import { quantile } from '../lib/stats.js';
import { benchHost, seededClient, stmtApp } from './targets.js';
import { comparableAnswer, WORKLOADS } from './workloads.js';

const name = process.argv[2] ?? 'query';
const rounds = Number(process.argv[3] ?? 12);
const workload = WORKLOADS.find((w) => w.name === name);
if (!workload) throw new Error(`Unknown workload "${name}" (query, list, insert)`);
const CONNECTIONS = 8;
const ROUND_CALLS = 2000;

const client = await seededClient();
/** @type {string | null} the target being loaded */
let current = null;
/** @type {Record<string, { calls: number, ms: number }>} */
const backend = {};
timeBackendCalls(client.pglite);

const targets = {
  host: (await benchHost(client)).app.fetch,
  'hono-stmt': stmtApp(client).fetch,
};
await checkSameAnswers();
/** @type {Record<string, number>} */
const ports = {};
for (const [target, fetch] of Object.entries(targets)) ports[target] = await listen(fetch);

const requests = (workload.bodies ?? [workload.body]).map((body) =>
  Buffer.from(
    `POST ${workload.path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n` +
      `content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  ),
);
let sent = 0;

for (const target of Object.keys(ports)) await load(ports[target], 4 * ROUND_CALLS);
/** @type {Record<string, { cpuUs: number[], backendUs: number[] }>} */
const results = Object.fromEntries(Object.keys(ports).map((t) => [t, { cpuUs: [], backendUs: [] }]));
for (let r = 0; r < rounds; r++) {
  for (const target of Object.keys(ports)) {
    current = target;
    backend[target] = { calls: 0, ms: 0 };
    results[target].cpuUs.push(await load(ports[target], ROUND_CALLS));
    results[target].backendUs.push((backend[target].ms * 1000) / backend[target].calls);
    current = null;
  }
}
console.log(`same-process ${name}: ${rounds} rounds of ${ROUND_CALLS} calls, ${CONNECTIONS} connections`);
for (const [target, { cpuUs, backendUs }] of Object.entries(results)) {
  console.log(`  ${target.padEnd(9)} CPU per call ${summary(cpuUs)}   in PGlite's backend call ${summary(backendUs)}`);
}
process.exit(0);

/** Fails unless both targets answer the workload's first call alike (as `crud` checks its servers). */
async function checkSameAnswers() {
  const answers = [];
  for (const [target, fetch] of Object.entries(targets)) {
    const init = { method: 'POST', headers: { 'content-type': 'application/json' }, body: workload.body };
    const response = await fetch(new Request(`http://127.0.0.1${workload.path}`, init));
    const text = await response.text();
    if (response.status !== 200) throw new Error(`${target} answers ${response.status}: ${text}`);
    answers.push(comparableAnswer(workload, text));
  }
  if (answers[0] !== answers[1])
    throw new Error(`the targets answer ${workload.body} differently:\n${answers.join('\n')}`);
}

/**
 * Serves `fetch` on a free loopback port.
 *
 * @param {(request: Request) => Response | Promise<Response>} fetch
 * @returns {Promise<number>}
 */
function listen(fetch) {
  return new Promise((resolve) => serve({ fetch, port: 0, hostname: '127.0.0.1' }, (info) => resolve(info.port)));
}

/**
 * Sends `calls` requests over `CONNECTIONS` connections; the process CPU time per call in µs.
 *
 * @param {number} port
 * @param {number} calls
 */
async function load(port, calls) {
  const connections = Array.from({ length: CONNECTIONS }, () => connect(port));
  const before = process.cpuUsage();
  let left = calls;
  await Promise.all(
    connections.map(async (c) => {
      while (left-- > 0) await c.send();
    }),
  );
  const used = process.cpuUsage(before);
  for (const c of connections) c.close();
  return (used.user + used.system) / calls;
}

/**
 * A keep-alive connection that sends one request at a time and resolves when its answer is in;
 * any answer but 200 ends the run.
 *
 * @param {number} port
 */
function connect(port) {
  const socket = net.connect(port, '127.0.0.1');
  socket.setNoDelay(true);
  let buffered = Buffer.alloc(0);
  /** @type {(() => void) | null} */
  let answered = null;
  socket.on('data', (chunk) => {
    buffered = buffered.length ? Buffer.concat([buffered, chunk]) : chunk;
    const end = buffered.indexOf('\r\n\r\n');
    if (end < 0) return;
    const head = buffered.subarray(0, end).toString('latin1');
    const length = end + 4 + Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
    if (buffered.length < length) return;
    if (!head.startsWith('HTTP/1.1 200')) throw new Error(`not 200: ${buffered.subarray(0, length).toString()}`);
    buffered = buffered.subarray(length);
    const done = answered;
    answered = null;
    done?.();
  });
  return {
    send: () =>
      new Promise((resolve) => {
        answered = () => resolve(undefined);
        socket.write(requests[sent++ % requests.length]);
      }),
    close: () => socket.destroy(),
  };
}

/**
 * Times every synchronous entry into PGlite's backend, per target being loaded.
 *
 * @param {{ execProtocolRawSync: (message: Uint8Array) => unknown }} pglite
 */
function timeBackendCalls(pglite) {
  const call = pglite.execProtocolRawSync.bind(pglite);
  pglite.execProtocolRawSync = (message) => {
    const started = performance.now();
    const result = call(message);
    const b = current && backend[current];
    if (b) {
      b.calls++;
      b.ms += performance.now() - started;
    }
    return result;
  };
}

/**
 * `median (lower quartile)` in µs.
 *
 * @param {number[]} values
 */
function summary(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return `${quantile(sorted, 0.5).toFixed(0).padStart(4)} µs (q1 ${quantile(sorted, 0.25).toFixed(0).padStart(4)})`;
}
