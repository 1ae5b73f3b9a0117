/**
 * The subscribers of the live bench, in their own process (forked with IPC): each opens its push
 * stream (`GET /_live/{featureId}`, one socket each) and subscribes one query on it. A push is
 * timed when its bytes arrive (the machine's monotonic clock, as the host's commit times), then
 * read for the newest bench write it holds: rows are newest first and the bench writes `w{k}`.
 *
 * Messages (each answered with one of the same type):
 * - `open` `{ base, featureId, fn, args, count, distinct }`: opens `count` subscribers (anonymous,
 *   or each its own dev identity); answers how many queries stayed live and why others did not;
 * - `arm` `{ first }`: forgets what arrived; from now on, writes `first`.. count;
 * - `progress` `{ last }`: how many subscribers hold write `last` by now;
 * - `collect` `{ first, last, bases }`: per base (write k -> time), the latency quantiles of all
 *   deliveries (subscriber x write, timed at the first push holding the write); and per write, from
 *   the first base to its first delivery (`toFirst`), and from its first delivery to its last
 *   (`fanOut`);
 * - `close`: closes every stream.
 */
import http from 'node:http';
import { quantile } from './stats.js';

const NEWEST_WRITE = /"text":"w(\d+)"/;
const SUBSCRIBE_CONCURRENCY = 32;

/**
 * @typedef {object} Subscriber
 * @property {http.ClientRequest} request
 * @property {number} newest the newest write it holds
 * @property {number[]} receipts pairs: write k, time
 */

/** @type {Subscriber[]} */
let subscribers = [];
let pushes = 0;
let errorPushes = 0;
let firstError = null;
const agent = new http.Agent({ keepAlive: true, maxSockets: SUBSCRIBE_CONCURRENCY });

process.on('message', async (message) => {
  const answer = await handle(message).catch((error) => ({ error: String(error?.stack ?? error) }));
  process.send({ type: message.type, ...answer });
});
process.on('disconnect', () => process.exit(0));

async function handle(message) {
  switch (message.type) {
    case 'open':
      return open(message);
    case 'arm':
      for (const s of subscribers) {
        s.newest = Math.max(s.newest, message.first - 1);
        s.receipts = [];
      }
      pushes = 0;
      errorPushes = 0;
      firstError = null;
      return { cpuMs: cpuMs() };
    case 'progress':
      return {
        done: subscribers.filter((s) => s.newest >= message.last).length,
        errorPushes,
        firstError,
        cpuMs: cpuMs(),
      };
    case 'collect':
      return collect(message);
    case 'close':
      for (const s of subscribers) s.request.destroy();
      subscribers = [];
      return {};
    default:
      throw new Error(`unknown message ${message.type}`);
  }
}

async function open({ base, featureId, fn, args, count, distinct }) {
  const started = performance.now();
  const body = JSON.stringify({ args });
  const off = new Map();
  let on = 0;
  let next = 0;
  async function worker() {
    while (next < count) {
      const i = next++;
      const headers = distinct ? { 'x-favn-dev-identity': JSON.stringify({ sub: `user-${i}` }) } : {};
      const subscriber = await openStream(`${base}/_live/${featureId}`, headers);
      subscribers.push(subscriber);
      const answer = await post(`${base}/rpc/${featureId}/${fn}`, body, {
        ...headers,
        'x-favn-live': `${subscriber.connection}.q`,
      });
      if (answer.live === 'on') on++;
      else off.set(`${answer.status} ${answer.live}`, (off.get(`${answer.status} ${answer.live}`) ?? 0) + 1);
    }
  }
  await Promise.all(Array.from({ length: SUBSCRIBE_CONCURRENCY }, worker));
  return { on, off: Object.fromEntries(off), ms: performance.now() - started };
}

/** Opens one push stream; resolves once its `hello` event names the connection. */
function openStream(url, headers) {
  return new Promise((resolve, reject) => {
    /** @type {Subscriber & { connection: string }} */
    const subscriber = { request: null, newest: -1, receipts: [], connection: '' };
    let buffer = '';
    subscriber.request = http.get(url, { agent: false, headers }, (res) => {
      if (res.statusCode !== 200) {
        reject(new Error(`GET ${url} answered ${res.statusCode}`));
        res.resume();
        return;
      }
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        const at = now();
        buffer += chunk;
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          if (block.startsWith('event: hello')) {
            subscriber.connection = JSON.parse(block.slice(block.indexOf('data: ') + 6)).connection;
            resolve(subscriber);
          } else if (block.startsWith('data: ')) received(subscriber, block, at);
        }
      });
    });
    subscriber.request.on('error', (error) => {
      if (!subscriber.connection) reject(error);
    });
  });
}

/** One push: every write up to the newest it holds is delivered now (a push may hold several). */
function received(subscriber, block, at) {
  pushes++;
  if (block.includes('"error":')) {
    errorPushes++;
    firstError ??= block.slice(0, 300);
    return;
  }
  const match = NEWEST_WRITE.exec(block);
  if (!match) return;
  const k = Number(match[1]);
  for (let j = subscriber.newest + 1; j <= k; j++) subscriber.receipts.push(j, at);
  if (k > subscriber.newest) subscriber.newest = k;
}

function collect({ first, last, bases }) {
  const expected = subscribers.length * (last - first + 1);
  const result = { subscribers: subscribers.length, expected, pushes, errorPushes, firstError };
  let deliveries = 0;
  for (const [name, times] of Object.entries(bases)) {
    const latencies = [];
    for (const s of subscribers) {
      for (let i = 0; i < s.receipts.length; i += 2) {
        const k = s.receipts[i];
        if (k < first || k > last || times[k - first] == null) continue;
        latencies.push(s.receipts[i + 1] - times[k - first]);
      }
    }
    latencies.sort((a, b) => a - b);
    deliveries = Math.max(deliveries, latencies.length);
    result[name] = {
      n: latencies.length,
      p50: quantile(latencies, 0.5),
      p99: quantile(latencies, 0.99),
      max: latencies.at(-1) ?? NaN,
      min: latencies[0] ?? NaN,
    };
  }
  const base = Object.values(bases).at(-1);
  const firsts = Array.from({ length: last - first + 1 }, () => Infinity);
  const lasts = Array.from({ length: last - first + 1 }, () => -Infinity);
  for (const s of subscribers) {
    for (let i = 0; i < s.receipts.length; i += 2) {
      const j = s.receipts[i] - first;
      if (j < 0 || j >= firsts.length) continue;
      firsts[j] = Math.min(firsts[j], s.receipts[i + 1]);
      lasts[j] = Math.max(lasts[j], s.receipts[i + 1]);
    }
  }
  const toFirst = [];
  const fanOut = [];
  firsts.forEach((t, j) => {
    if (t === Infinity || base[j] == null) return;
    toFirst.push(t - base[j]);
    fanOut.push(lasts[j] - t);
  });
  const summary = (values) => {
    values.sort((a, b) => a - b);
    return { p50: quantile(values, 0.5), max: values.at(-1) ?? NaN };
  };
  return { ...result, deliveries, lost: expected - deliveries, toFirst: summary(toFirst), fanOut: summary(fanOut) };
}

/** This process's CPU time so far. */
function cpuMs() {
  const cpu = process.cpuUsage();
  return (cpu.user + cpu.system) / 1000;
}

/** POSTs a call; its status and `x-favn-live` answer. */
function post(url, body, headers) {
  return new Promise((resolve, reject) => {
    const request = http.request(
      url,
      {
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode, live: res.headers['x-favn-live'] ?? null }));
      },
    );
    request.on('error', reject);
    request.end(body);
  });
}

/** Milliseconds of the machine's monotonic clock (as `live-targets.js`). */
function now() {
  return Number(process.hrtime.bigint()) / 1e6;
}
