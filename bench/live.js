/**
 * Live bench: how fast a committed write reaches the subscribers of a live query, and what each
 * delivered update costs the host. The host (`lib/live-targets.js`, in its own process) serves a
 * `rules` table (1,000 seed rows), `latest = queryRows('rules')` and `addRule = insertRow('rules')`.
 * The subscribers (`lib/live-subscribers.js`, another process) each open a push stream and keep
 * `latest({ limit: 20 })` (the 20 newest rows) live on it. The writer (this process) calls
 * `addRule({ text: 'w{k}' })` at a steady rate, one call at a time, through the RPC route.
 *
 * Latency is from the write's commit on the host (its data layer's commit listener, the moment the
 * host's live queries hear of it) to a subscriber's receipt of the first push holding the write,
 * over all deliveries (subscriber x write); both read the machine's monotonic clock. The figures
 * from the writer sending the call and from its answer are printed too. Host CPU per update is the
 * host process's CPU time from the first measured write until every subscriber held the last one,
 * over the deliveries (it includes the writes themselves).
 *
 * Three runs, each after an unmeasured warm-up:
 * - `one host`: anonymous subscribers, so all share one group and one re-run per write;
 * - `distinct users`: on the same host, each subscriber its own user, so each write re-runs the
 *   query once per subscriber (at a lower write rate);
 * - `two hosts`: PostgreSQL, the writer on host A, the subscribers on host B, the change carried by
 *   LISTEN/NOTIFY (skipped, with the reason, when no PostgreSQL server binaries are installed).
 *
 * The last line printed is one JSON object.
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startPostgres } from './lib/live-postgres.js';
import { COMMITS_PATH, FEATURE_ID, now } from './lib/live-targets.js';
import { startServer } from './lib/processes.js';
import { round } from './lib/stats.js';
import { machine, otherCpu, systemCpu, waitForQuiet } from './lib/system.js';

/** Measurement settings (loopback only). */
export const SETTINGS = {
  subscribers: 1_000,
  writesPerSecond: 10,
  seconds: 10,
  warmupWrites: 10,
  distinct: { subscribers: 1_000, writesPerSecond: 2, seconds: 5, warmupWrites: 2 },
  /** How long after the last write deliveries may still arrive. */
  settleMs: 5_000,
  distinctSettleMs: 30_000,
};

/** Goals the one-host result is reported against (not asserted). */
const TARGET = { p50Ms: 50, p99Ms: 200 };

const SUBSCRIBERS_CHILD = fileURLToPath(new URL('./lib/live-subscribers.js', import.meta.url));
const TARGETS = 'lib/live-targets.js';
const QUERY = { fn: 'latest', args: [{ limit: 20 }] };

/** Runs the bench and prints its lines. */
export async function run() {
  const { subscribers: count, writesPerSecond, seconds, distinct } = SETTINGS;
  console.log(`live: ${machine()}`);
  console.log(
    `live: ${count} subscribers (one process, one push stream each) keep ${FEATURE_ID}/latest({limit:20}) live; ` +
      `a writer calls addRule at ${writesPerSecond}/s for ${seconds} s, one call at a time`,
  );
  console.log("live: latency from the commit on the writer's host to the first push holding the write, all deliveries");
  const subscribers = startSubscribers();
  const writer = { next: 1 };
  const results = {};
  let host;
  let hostA;
  let hostB;
  let postgres;
  try {
    host = await startServer(TARGETS, 'pglite');
    results.one = await measureRun('one host, PGlite, anonymous (all share one re-run per write)', {
      subscribers,
      writer,
      writeHost: host,
      pushHost: host,
      count,
      distinct: false,
      writesPerSecond,
      seconds,
      warmupWrites: SETTINGS.warmupWrites,
      settleMs: SETTINGS.settleMs,
    });
    results.distinct = await measureRun('one host, PGlite, distinct users (one re-run per subscriber per write)', {
      subscribers,
      writer,
      writeHost: host,
      pushHost: host,
      count: distinct.subscribers,
      distinct: true,
      writesPerSecond: distinct.writesPerSecond,
      seconds: distinct.seconds,
      warmupWrites: distinct.warmupWrites,
      settleMs: SETTINGS.distinctSettleMs,
    });
    await host.stop();
    host = undefined;
    postgres = await startPostgres();
    if ('skipped' in postgres) {
      console.log(`live: two hosts skipped: ${postgres.skipped}`);
    } else {
      process.env.BENCH_LIVE_DATABASE_URL = postgres.url;
      hostA = await startServer(TARGETS, 'postgres-a');
      hostB = await startServer(TARGETS, 'postgres-b');
      delete process.env.BENCH_LIVE_DATABASE_URL;
      results.cross = await measureRun('two hosts, PostgreSQL, writer on A, subscribers on B, anonymous', {
        subscribers,
        writer,
        writeHost: hostA,
        pushHost: hostB,
        count,
        distinct: false,
        writesPerSecond,
        seconds,
        warmupWrites: SETTINGS.warmupWrites,
        settleMs: SETTINGS.settleMs,
      });
    }
    const { one, cross } = results;
    const met = one.commit.p50 <= TARGET.p50Ms && one.commit.p99 <= TARGET.p99Ms;
    console.log(
      `live: one host p50 ${one.commit.p50.toFixed(1)} ms p99 ${one.commit.p99.toFixed(1)} ms ` +
        `(goal p50 <= ${TARGET.p50Ms} ms, p99 <= ${TARGET.p99Ms} ms: ${met ? 'met' : 'missed'})`,
    );
    const figure = (value, digits = 1) => (value === undefined || Number.isNaN(value) ? null : round(value, digits));
    console.log(
      JSON.stringify({
        bench: 'live-details',
        lost: one.lost,
        cross_host_p99_ms: figure(cross?.commit.p99),
        cross_host_lost: cross?.lost ?? null,
        cross_host_cpu_us_per_update: figure(cross?.cpuUsPerUpdate, 0),
        distinct_users_p50_ms: figure(results.distinct.commit.p50),
        distinct_users_p99_ms: figure(results.distinct.commit.p99),
        distinct_users_lost: results.distinct.lost,
        distinct_users_cpu_us_per_update: figure(results.distinct.cpuUsPerUpdate, 0),
      }),
    );
    console.log(
      JSON.stringify({
        bench: 'live',
        subscribers: count,
        p50_ms: figure(one.commit.p50),
        p99_ms: figure(one.commit.p99),
        cross_host_p50_ms: figure(cross?.commit.p50),
        cpu_us_per_update: figure(one.cpuUsPerUpdate, 1),
      }),
    );
  } finally {
    subscribers.child.kill();
    await Promise.all([host?.stop(), hostA?.stop(), hostB?.stop()]);
    if (postgres && !('skipped' in postgres)) await postgres.stop();
  }
}

/**
 * One run: opens the subscribers on `pushHost`, warms up, writes at a steady rate on `writeHost`,
 * waits for the deliveries and prints the figures.
 */
async function measureRun(title, options) {
  const { subscribers, writer, writeHost, pushHost, count, distinct, writesPerSecond, seconds } = options;
  const base = `http://127.0.0.1:${pushHost.port}`;
  const opened = await subscribers.ask(
    { type: 'open', base, featureId: FEATURE_ID, ...QUERY, count, distinct },
    120_000,
  );
  const stats = await commitsOf(pushHost);
  console.log(
    `  ${title}: ${opened.on} of ${count} queries live in ${Math.round(opened.ms)} ms` +
      `${Object.keys(opened.off).length ? `, not live: ${JSON.stringify(opened.off)}` : ''}; host: ${JSON.stringify(stats.stats)}`,
  );
  // Unmeasured: warms every process's JIT and the database on this path.
  await subscribers.ask({ type: 'arm', first: writer.next });
  const warm = await writeSteadily(writeHost, writer, options.warmupWrites, writesPerSecond);
  await waitForDeliveries(subscribers, warm.last, count, options.settleMs);
  await commitsOf(writeHost);
  if (pushHost !== writeHost) await commitsOf(pushHost);

  // The measurement starts when the machine is quiet, or after a few seconds of waiting for it.
  const quiet = await waitForQuiet();
  const first = writer.next;
  const armed = await subscribers.ask({ type: 'arm', first });
  const cpuBefore = await pushHost.cpu();
  const writeCpuBefore = writeHost === pushHost ? null : await writeHost.cpu();
  const systemBefore = systemCpu();
  const written = await writeSteadily(writeHost, writer, Math.round(writesPerSecond * seconds), writesPerSecond);
  const progress = await waitForDeliveries(subscribers, written.last, count, options.settleMs);
  const cpuAfter = await pushHost.cpu();
  const writeCpuAfter = writeHost === pushHost ? null : await writeHost.cpu();
  const systemAfter = systemCpu();
  const { times: commits, loop: writeLoop } = await commitsOf(writeHost);
  const pushLoop = writeHost === pushHost ? writeLoop : (await commitsOf(pushHost)).loop;
  if (commits.length !== written.sends.length)
    console.log(`  (the host saw ${commits.length} commits for ${written.sends.length} writes: commit times unusable)`);
  const bases = { send: written.sends, answer: written.answers };
  if (commits.length === written.sends.length) bases.commit = commits;
  const c = await subscribers.ask({ type: 'collect', first, last: written.last, bases }, 60_000);
  if (c.error) throw new Error(c.error);

  const hostMs = cpuAfter.cpuMs - cpuBefore.cpuMs;
  const wallMs = cpuAfter.at - cpuBefore.at;
  const writeHostMs = writeCpuAfter ? writeCpuAfter.cpuMs - writeCpuBefore.cpuMs : 0;
  const subscribersMs = progress.cpuMs - armed.cpuMs;
  const others = otherCpu(systemBefore, systemAfter, hostMs + writeHostMs + subscribersMs);
  const cpuUsPerUpdate = (hostMs * 1000) / c.deliveries;
  const ms = (q) => `p50 ${q.p50.toFixed(1)} ms  p99 ${q.p99.toFixed(1)} ms  max ${q.max.toFixed(1)} ms`;
  const writes = written.sends.length;
  console.log(
    `  ${title}: ${writes} writes at ${writesPerSecond}/s (writer call p50 ${written.callP50.toFixed(1)} ms); ` +
      `${c.deliveries} of ${c.expected} deliveries (${c.lost} lost) in ${c.pushes} pushes, ${c.errorPushes} error pushes` +
      `${c.firstError ? ` (first: ${c.firstError})` : ''}${quiet ? '' : '; the machine was busy with other work when it started'}`,
  );
  if (c.commit) console.log(`    commit -> push  ${ms(c.commit)}`);
  console.log(`    send   -> push  ${ms(c.send)}`);
  console.log(`    answer -> push  ${ms(c.answer)}`);
  console.log(
    `    per write: ${c.commit ? 'commit' : 'answer'} -> first push p50 ${c.toFirst.p50.toFixed(1)} ms (max ${c.toFirst.max.toFixed(1)}), ` +
      `first -> last subscriber p50 ${c.fanOut.p50.toFixed(1)} ms (max ${c.fanOut.max.toFixed(1)})`,
  );
  const late = (l) => `p50 ${l.p50.toFixed(1)} ms, p99 ${l.p99.toFixed(1)} ms, max ${l.max.toFixed(1)} ms`;
  console.log(
    `    event loop delay: push host ${late(pushLoop)}${writeHost === pushHost ? '' : `; writer's host ${late(writeLoop)}`}`,
  );
  const pct = (x) => `${Math.round((x / wallMs) * 100)}%`;
  console.log(
    `    cpu: push host ${Math.round(hostMs)} ms over ${(wallMs / 1000).toFixed(1)} s (${pct(hostMs)} of a core), ` +
      `${cpuUsPerUpdate.toFixed(1)} µs per delivered update` +
      `${writeCpuAfter ? `; writer's host ${Math.round(writeHostMs)} ms (${pct(writeHostMs)})` : ''}` +
      `; subscribers ${Math.round(subscribersMs)} ms (${pct(subscribersMs)})` +
      `${others ? `; other processes ${Math.round(others.other * 100)}%, steal ${Math.round(others.steal * 100)}%` : ''}`,
  );
  await subscribers.ask({ type: 'close' });
  return { commit: c.commit ?? c.answer, lost: c.lost, cpuUsPerUpdate };
}

/**
 * Calls `addRule({ text: 'w{k}', votes: k })` `n` times, due every `1000 / perSecond` ms, one call
 * at a time (a late answer delays the next call). Fails on an answer other than 200.
 */
async function writeSteadily(host, writer, n, perSecond) {
  const url = `http://127.0.0.1:${host.port}/rpc/${FEATURE_ID}/addRule`;
  const sends = [];
  const answers = [];
  const start = now();
  for (let i = 0; i < n; i++) {
    const wait = start + (i * 1000) / perSecond - now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    const k = writer.next++;
    sends.push(now());
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ args: [{ text: `w${k}`, votes: k }] }),
    });
    const text = await res.text();
    answers.push(now());
    if (res.status !== 200) throw new Error(`addRule answered ${res.status} ${text.slice(0, 300)}`);
  }
  const calls = answers.map((a, i) => a - sends[i]).sort((a, b) => a - b);
  return { sends, answers, last: writer.next - 1, callP50: calls[calls.length >> 1] ?? NaN };
}

/** Waits until every subscriber holds write `last`, or `settleMs` passed without it. */
async function waitForDeliveries(subscribers, last, count, settleMs) {
  const deadline = now() + settleMs;
  for (;;) {
    const progress = await subscribers.ask({ type: 'progress', last });
    if (progress.done >= count || now() > deadline) return progress;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The host's commit times since the last ask, and its live stats. */
async function commitsOf(host) {
  const res = await fetch(`http://127.0.0.1:${host.port}${COMMITS_PATH}`);
  return res.json();
}

/** Forks the subscribers' process; `ask` sends a message and resolves with its answer. */
function startSubscribers() {
  const child = fork(SUBSCRIBERS_CHILD, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return {
    child,
    ask: (message, timeoutMs = 10_000) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`subscribers: no answer to ${message.type}`)), timeoutMs);
        const onMessage = (answer) => {
          if (answer?.type !== message.type) return;
          clearTimeout(timer);
          child.off('message', onMessage);
          if (answer.error) reject(new Error(`subscribers: ${answer.error}`));
          else resolve(answer);
        };
        child.on('message', onMessage);
        child.send(message);
      }),
  };
}
