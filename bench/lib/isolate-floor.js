/**
 * The floor of the isolate bench: what isolated-vm itself costs the host per call, with no host
 * code around it. One isolate and context, a function that returns a short string, called
 * `CALLS` times one after another with `Reference.apply` (the isolate runs on its own thread, as
 * the host runs handlers) and with `applySync` (on the calling thread); host CPU per call of each
 * (`process.cpuUsage`, all threads of this process). Run as a child with `--no-node-snapshot`;
 * prints one JSON line.
 */
import { isolatedVm } from '../../dist/devserver/isolate/isolated-vm.js';

const CALLS = 20_000;

const ivm = isolatedVm();
const isolate = new ivm.Isolate({ memoryLimit: 64 });
const context = await isolate.createContext();
const fn = await context.eval('(function (id, kind, name, args) { return "R" + args; })', { reference: true });
const args = [1, 'query', 'trivial', '[]'];

/** Host CPU µs per call of `once` over `CALLS` sequential calls, after a warm-up. */
async function perCall(once) {
  for (let i = 0; i < 2_000; i++) await once();
  const before = process.cpuUsage();
  for (let i = 0; i < CALLS; i++) await once();
  const used = process.cpuUsage(before);
  return (used.user + used.system) / CALLS;
}

const asyncUs = await perCall(() => fn.apply(undefined, args, { timeout: 1000 }));
const syncUs = await perCall(() => fn.applySync(undefined, args, { timeout: 1000 }));
isolate.dispose();
console.log(JSON.stringify({ apply_us: Math.round(asyncUs * 10) / 10, apply_sync_us: Math.round(syncUs * 10) / 10 }));
