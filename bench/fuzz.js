/**
 * Fuzz bench: `npm run fuzz [-- --requests N --seed S ...]` sends N random and malformed requests
 * (split evenly) to `favn serve` over built fixtures and to the `vite` dev server with the plugin,
 * each host in its own process. It judges every answer against the RPC contract (SPEC §4), counts
 * hangs, and reads the host's resident memory before and after, once idle. The last line printed
 * is one JSON object: `{"bench":"fuzz","requests":N,"non_contract":N,"hangs":N,"rss_growth_mb":N}`
 * (the largest growth of the hosts). Options: `--help`.
 */
import { randomInt } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { CLASS_NAMES, createGenerator } from './lib/fuzz-generator.js';
import { HOST_NAMES, prepareFixtures, primeHosts, startHost } from './lib/fuzz-hosts.js';
import { readRss, readRssByKind } from './lib/fuzz-memory.js';
import { runCases } from './lib/fuzz-run.js';
import { checkServing, emptyIsolatePool, fillIsolatePool } from './lib/fuzz-serving.js';
import { machine } from './lib/system.js';

const HELP = `npm run fuzz -- [options]
  --requests N      requests in all, split evenly over the hosts (default 2000)
  --seed S          seed of the request generator (default: random, printed)
  --hosts a,b       hosts to fuzz: ${HOST_NAMES.join(', ')} (default both)
  --classes a,b     only these request classes: ${CLASS_NAMES.join(', ')}
  --skip a,b        all request classes but these
  --concurrency N   requests in flight (default 16)
  --hang-ms N       no answer within this long is a hang (default 15000)
  --idle-ms N       idle time before each memory reading (default 5000)
  --gc              diagnostics: start the hosts with --expose-gc and report their memory after a GC
  --node-options S  more flags for the host processes (diagnostics, e.g. "--heapsnapshot-signal=SIGUSR2")
  --favn-malloc     start vite with the malloc settings the favn binary starts itself with (favn serve
                    always has them); without it vite starts as users start it, and glibc's per-thread
                    arenas keep malloc'd memory that no code of ours holds (docs/fuzz.md)
  --keep            keep the fixture copies and host folders
  --keep-isolates   skip the last reading: by default, after the fuzz every handler isolate is run out of
                    memory on purpose (so the pool disposes it) and the RSS is read again without isolate heaps
  --rounds N        split each host's requests into N rounds, with a memory reading after each (default 1)
  --max-seconds N   stop sending after this long per host (default 1800)`;

/** Share of each host's requests sent before the baseline memory reading (at most WARM_UP_MAX). */
const WARM_UP_SHARE = 0.15;
const WARM_UP_MAX = 300;

/**
 * @typedef {object} FuzzOptions
 * @property {number} requests
 * @property {string} seed
 * @property {('serve' | 'vite')[]} hosts
 * @property {string[] | null} classes
 * @property {number} concurrency
 * @property {number} hangMs
 * @property {number} idleMs
 * @property {boolean} gc
 * @property {string[]} nodeOptions
 * @property {boolean} keep
 * @property {number} maxSeconds
 * @property {number} rounds
 * @property {boolean} emptyIsolates
 * @property {boolean} favnMalloc
 */

/**
 * Runs the fuzz bench and prints its lines; resolves with the final result object.
 *
 * @param {FuzzOptions} options
 */
export async function run(options) {
  const perHost = Math.max(1, Math.round(options.requests / options.hosts.length));
  console.log(
    `fuzz: seed ${options.seed}; ${perHost} requests per host (${options.hosts.join(', ')}), ${options.concurrency} in flight, hang after ${options.hangMs} ms, idle ${options.idleMs} ms`,
  );
  console.log(
    `fuzz: ${machine()}${process.env.MALLOC_ARENA_MAX ? `, MALLOC_ARENA_MAX=${process.env.MALLOC_ARENA_MAX}` : ''}${options.favnMalloc ? ", vite with the favn binary's malloc settings" : ''}${options.gc ? ', hosts with --expose-gc' : ''}`,
  );
  const fixtures = await prepareFixtures();
  const results = [];
  try {
    await primeHosts(options.hosts, fixtures);
    for (const name of options.hosts) results.push(await fuzzHost(name, fixtures, perHost, options));
  } finally {
    if (options.keep) console.log(`fuzz: kept ${fixtures.work}`);
    else await fixtures.remove();
  }
  const final = {
    bench: 'fuzz',
    requests: results.reduce((n, r) => n + r.requests, 0),
    non_contract: results.reduce((n, r) => n + r.non_contract, 0),
    hangs: results.reduce((n, r) => n + r.hangs, 0),
    rss_growth_mb: Math.max(...results.map((r) => r.rss_growth_mb)),
  };
  console.log(JSON.stringify(final));
  // Findings fail the command (for scripts); the memory bound is the test's to judge.
  if (final.non_contract > 0 || final.hangs > 0) process.exitCode = 1;
  return final;
}

/** Starts one host, fuzzes it, reads its memory, checks it still serves, stops it. */
async function fuzzHost(name, fixtures, count, options) {
  const host = await startHost(name, fixtures, {
    gc: options.gc,
    nodeOptions: options.nodeOptions,
    favnMalloc: options.favnMalloc,
  });
  try {
    const start = readRss(host.pid);
    const next = createGenerator({
      seed: options.seed,
      hostName: name,
      port: host.port,
      requests: count,
      assets: fixtures.assets,
      handlersRoot: fixtures.handlers,
      classes: options.classes,
    });
    const deadline = performance.now() + options.maxSeconds * 1000;
    const send = (n) =>
      runCases({
        port: host.port,
        next,
        count: n,
        concurrency: options.concurrency,
        hangMs: options.hangMs,
        marker: fixtures.marker,
        deadline,
        onFinding: (f) => console.log(`${name}: ${f.cls === 'page' ? '' : 'NON-CONTRACT '}${describeFinding(f)}`),
      });
    const warmCount = Math.min(WARM_UP_MAX, Math.round(count * WARM_UP_SHARE));
    await fillIsolatePool(host.port);
    const warm = await send(warmCount);
    const baseline = await idleMemory(host, options);
    // The same reading without isolate heaps, to compare with the one after the fuzz.
    let emptiedBefore = null;
    if (options.emptyIsolates) {
      await emptyIsolatePool(host.port);
      emptiedBefore = await idleMemory(host, options);
      await fillIsolatePool(host.port);
    }
    // In rounds, each followed by an idle reading: a leak grows every round, a cache or
    // fragmentation levels off.
    let main = null;
    let busy = null;
    let after = baseline;
    for (let round = 1; round <= options.rounds; round++) {
      const share =
        Math.round(((count - warmCount) * round) / options.rounds) -
        Math.round(((count - warmCount) * (round - 1)) / options.rounds);
      const tally = await send(share);
      main = main ? merge(main, tally) : tally;
      busy = readRss(host.pid);
      after = await idleMemory(host, options);
      if (options.rounds > 1) {
        const sent = warm.requests + main.requests;
        console.log(
          `${name}: round ${round}: ${sent} requests, idle RSS ${after.rss.rssMb} MB (${signed(after.rss.rssMb - baseline.rss.rssMb)} MB); ${formatKinds(baseline.kinds, after.kinds)}`,
        );
      }
    }
    let emptied = null;
    if (options.emptyIsolates) {
      await emptyIsolatePool(host.port);
      emptied = await idleMemory(host, options);
    }
    const serving = await checkServing(host.port, name === 'serve');
    const tally = merge(warm, main);
    if (!serving.ok) {
      tally.nonContract++;
      tally.findings.push({ cls: 'serving', label: serving.label, reason: serving.reason, answers: [] });
      console.log(`${name}: NON-CONTRACT after the fuzz: ${serving.label}: ${serving.reason}`);
    }
    const growth = round1(after.rss.rssMb - baseline.rss.rssMb);
    console.log(
      `${name}: ${tally.requests} requests in ${(tally.elapsedMs / 1000).toFixed(1)} s; non-contract ${tally.nonContract}, hangs ${tally.hangs}, quick calls timed out ${tally.simpleTimeouts}`,
    );
    console.log(`${name}: statuses ${formatCounts(tally.statuses)}`);
    for (const [cls, counts] of Object.entries(tally.classes).sort())
      console.log(`${name}:   ${cls.padEnd(13)} ${formatCounts(counts)}`);
    console.log(
      `${name}: RSS ${mb(start)} at start, ${mb(baseline.rss)} idle after ${warm.requests} warm-up requests, ${mb(busy)} right after the fuzz, ${mb(after.rss)} idle (${growth >= 0 ? '+' : ''}${growth} MB); peak ${start && after.rss ? after.rss.peakMb : '?'} MB`,
    );
    console.log(
      `${name}: RSS by kind, idle before -> after: ${formatKinds(baseline.kinds, after.kinds)}; threads ${baseline.rss.threads} -> ${after.rss.threads}; handler isolates ${formatIsolates(baseline.isolates)} -> ${formatIsolates(after.isolates)}`,
    );
    if (emptied) {
      console.log(
        `${name}: with every handler isolate disposed (out of memory on purpose), before -> after: RSS ${mb(emptiedBefore.rss)} -> ${mb(emptied.rss)} (${signed(emptied.rss.rssMb - emptiedBefore.rss.rssMb)} MB); ${formatKinds(emptiedBefore.kinds, emptied.kinds)}`,
      );
    }
    if (baseline.report && after.report) {
      console.log(`${name}: after GC: before ${formatReport(baseline.report)}`);
      console.log(`${name}: after GC: after  ${formatReport(after.report)}`);
    }
    if (emptiedBefore?.report && emptied?.report) {
      console.log(`${name}: after GC, isolates disposed: before ${formatReport(emptiedBefore.report)}`);
      console.log(`${name}: after GC, isolates disposed: after  ${formatReport(emptied.report)}`);
    }
    for (const f of tally.findings.slice(0, 10)) console.log(`${name}: finding ${describeFinding(f)}`);
    const line = {
      bench: 'fuzz-host',
      host: name,
      requests: tally.requests,
      non_contract: tally.nonContract,
      hangs: tally.hangs,
      quick_timeouts: tally.simpleTimeouts,
      rss_start_mb: start?.rssMb ?? null,
      rss_before_mb: baseline.rss.rssMb,
      rss_busy_mb: busy?.rssMb ?? null,
      rss_after_mb: after.rss.rssMb,
      rss_growth_mb: growth,
      anon_growth_mb: round1(after.rss.anonMb - baseline.rss.anonMb),
      kinds_before: baseline.kinds,
      kinds_after: after.kinds,
      rss_emptied_mb: emptied?.rss.rssMb ?? null,
      rss_growth_without_isolates_mb:
        emptied && emptiedBefore ? round1(emptied.rss.rssMb - emptiedBefore.rss.rssMb) : null,
      isolates_before: baseline.isolates?.isolates ?? null,
      isolates_after: after.isolates?.isolates ?? null,
      statuses: tally.statuses,
      findings: tally.findings.slice(0, 20),
    };
    console.log(JSON.stringify(line));
    return line;
  } finally {
    await host.stop();
  }
}

/** Lets the host idle, then reads its memory (and, with --gc, its own breakdown after a GC). */
async function idleMemory(host, options) {
  await sleep(options.idleMs);
  const report = await host.memoryReport();
  const rss = readRss(host.pid);
  if (!rss) throw new Error(`Cannot read the memory of ${host.name} (pid ${host.pid}) from /proc`);
  return { rss, kinds: readRssByKind(host.pid), report, isolates: await host.isolates() };
}

function merge(a, b) {
  const add = (x, y) => {
    const out = { ...x };
    for (const [k, v] of Object.entries(y)) out[k] = (out[k] ?? 0) + v;
    return out;
  };
  const classes = { ...a.classes };
  for (const [cls, counts] of Object.entries(b.classes)) classes[cls] = add(classes[cls] ?? {}, counts);
  return {
    requests: a.requests + b.requests,
    statuses: add(a.statuses, b.statuses),
    classes,
    nonContract: a.nonContract + b.nonContract,
    hangs: a.hangs + b.hangs,
    simpleTimeouts: a.simpleTimeouts + b.simpleTimeouts,
    findings: [...a.findings, ...b.findings],
    elapsedMs: a.elapsedMs + b.elapsedMs,
  };
}

function describeFinding(f) {
  return `[${f.cls}] ${f.label} -> ${f.answers.join(', ')}: ${f.reason.slice(0, 300)}`;
}

function formatCounts(counts) {
  return Object.entries(counts)
    .sort(([a], [b]) => String(a).localeCompare(String(b)))
    .map(([k, v]) => `${k}×${v}`)
    .join(' ');
}

function formatReport(r) {
  return `rss ${r.rssMb.toFixed(0)} MB, heap ${r.heapUsedMb.toFixed(0)}/${r.heapTotalMb.toFixed(0)} MB, external ${r.externalMb.toFixed(0)} MB (array buffers ${r.arrayBuffersMb.toFixed(0)}), malloced ${r.mallocedMb.toFixed(1)} MB, contexts ${r.nativeContexts} (+${r.detachedContexts} detached), handles ${r.handles}`;
}

function formatKinds(before, after) {
  if (!before || !after) return '?';
  const names = {
    wasmMb: 'wasm (PGlite)',
    mallocMb: 'malloc',
    otherAnonMb: 'other anonymous (V8 heaps, isolates, stacks)',
    fileMb: 'files',
  };
  return Object.entries(names)
    .map(([key, label]) => `${label} ${before[key]} -> ${after[key]} MB`)
    .join(', ');
}

function formatIsolates(pool) {
  return pool ? `${pool.isolates} (peak ${pool.peak}, max ${pool.max})` : '?';
}

const signed = (x) => `${x >= 0 ? '+' : ''}${round1(x)}`;
const mb = (rss) => (rss ? `${rss.rssMb} MB` : '? MB');
const round1 = (x) => Math.round(x * 10) / 10;

/** The options from the command line. */
export function parseOptions(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      requests: { type: 'string', default: '2000' },
      seed: { type: 'string' },
      hosts: { type: 'string', default: HOST_NAMES.join(',') },
      classes: { type: 'string' },
      skip: { type: 'string' },
      concurrency: { type: 'string', default: '16' },
      'hang-ms': { type: 'string', default: '15000' },
      'idle-ms': { type: 'string', default: '5000' },
      gc: { type: 'boolean', default: false },
      'node-options': { type: 'string', default: '' },
      keep: { type: 'boolean', default: false },
      'max-seconds': { type: 'string', default: '1800' },
      rounds: { type: 'string', default: '1' },
      'keep-isolates': { type: 'boolean', default: false },
      'favn-malloc': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(HELP);
    process.exit(0);
  }
  const positive = (name, text) => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < 1)
      throw new Error(`--${name} must be a positive integer (got ${JSON.stringify(text)})`);
    return n;
  };
  const hosts = values.hosts.split(',').filter(Boolean);
  for (const h of hosts)
    if (!HOST_NAMES.includes(h)) throw new Error(`Unknown host "${h}": use ${HOST_NAMES.join(', ')}`);
  let classes = values.classes ? values.classes.split(',').filter(Boolean) : null;
  const skip = values.skip ? values.skip.split(',').filter(Boolean) : [];
  for (const c of [...(classes ?? []), ...skip])
    if (!CLASS_NAMES.includes(c)) throw new Error(`Unknown class "${c}": use ${CLASS_NAMES.join(', ')}`);
  if (skip.length) classes = (classes ?? CLASS_NAMES).filter((c) => !skip.includes(c));
  return {
    requests: positive('requests', values.requests),
    seed: values.seed ?? String(randomInt(1, 2 ** 31)),
    hosts,
    classes,
    concurrency: positive('concurrency', values.concurrency),
    hangMs: positive('hang-ms', values['hang-ms']),
    idleMs: positive('idle-ms', values['idle-ms']),
    gc: values.gc,
    nodeOptions: values['node-options'].split(/\s+/).filter(Boolean),
    keep: values.keep,
    maxSeconds: positive('max-seconds', values['max-seconds']),
    rounds: positive('rounds', values.rounds),
    emptyIsolates: !values['keep-isolates'],
    favnMalloc: values['favn-malloc'],
  };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  // Exiting (rather than dying of the signal) runs the hooks that stop the hosts.
  for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => process.exit(130));
  await run(parseOptions(process.argv.slice(2)));
}
