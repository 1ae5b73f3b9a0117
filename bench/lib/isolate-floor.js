/**
 * The floor of the isolate bench: what isolated-vm itself costs the host per call, with no host
 * code around it. A function that returns a short string, in bare isolates, called `CALLS` times;
 * host CPU per call (`process.cpuUsage`, all threads of this process) of:
 *
 * - `apply_us`: one isolate, one call at a time, with `Reference.apply` (the isolate runs on
 *   isolated-vm's threads, as the host runs handlers);
 * - `apply_sync_us`: the same with `applySync` (on the calling thread);
 * - `apply_busy_us`: as the bench's throughput workload holds the host: `argv[2]` calls in flight
 *   (16) over `argv[3]` isolates (8, the default `maxIsolates`), a call holding its isolate until it
 *   answers. isolated-vm runs isolates on a pool of cores + 1 threads and starts a new thread for a
 *   call when all of them are busy, so this costs more per call than one at a time.
 *
 * Run as a child with `--no-node-snapshot`; prints one JSON line.
 */
import { isolatedVm } from '../../dist/devserver/isolate/isolated-vm.js';

const CALLS = 20_000;
const IN_FLIGHT = Number(process.argv[2] ?? 16);
const ISOLATES = Number(process.argv[3] ?? 8);

const ivm = isolatedVm();
const SOURCE = '(function (id, kind, name, args) { return "R" + args; })';
const args = [1, 'query', 'trivial', '[]'];
const isolates = Array.from({ length: ISOLATES }, () => new ivm.Isolate({ memoryLimit: 64 }));
const fns = await Promise.all(
  isolates.map(async (isolate) => (await isolate.createContext()).eval(SOURCE, { reference: true })),
);
const fn = fns[0];

/** Host CPU µs per call over `CALLS` calls of `once`, `inFlight` at a time, after a warm-up. */
async function perCall(once, inFlight = 1) {
  const loop = async (calls) => {
    let started = 0;
    const worker = async () => {
      while (started++ < calls) await once();
    };
    await Promise.all(Array.from({ length: inFlight }, worker));
  };
  await loop(2_000);
  const before = process.cpuUsage();
  await loop(CALLS);
  const used = process.cpuUsage(before);
  return (used.user + used.system) / CALLS;
}

/** A call on a free isolate, waiting for one when all are taken. */
const free = [...fns];
const waiting = [];
async function onFreeIsolate() {
  const taken = free.pop() ?? (await new Promise((resolve) => waiting.push(resolve)));
  try {
    await taken.apply(undefined, args, { timeout: 1000 });
  } finally {
    const next = waiting.shift();
    if (next) next(taken);
    else free.push(taken);
  }
}

const asyncUs = await perCall(() => fn.apply(undefined, args, { timeout: 1000 }));
const syncUs = await perCall(() => fn.applySync(undefined, args, { timeout: 1000 }));
const busyUs = await perCall(onFreeIsolate, IN_FLIGHT);
for (const isolate of isolates) isolate.dispose();
const tenth = (us) => Math.round(us * 10) / 10;
console.log(JSON.stringify({ apply_us: tenth(asyncUs), apply_sync_us: tenth(syncUs), apply_busy_us: tenth(busyUs) }));
