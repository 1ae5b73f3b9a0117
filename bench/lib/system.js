/**
 * Whole-machine CPU accounting from `/proc/stat` (Linux), to tell whether something besides the
 * bench used the CPU during a measurement. Elsewhere every function returns `null`.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';

/** Clock ticks per second of `/proc/stat` (USER_HZ, 100 on Linux). */
const TICKS_PER_SECOND = 100;

/**
 * @typedef {{ busyMs: number, stealMs: number, at: number }} CpuSnapshot
 */

/**
 * Busy and stolen CPU time of all cores so far.
 *
 * @returns {CpuSnapshot | null}
 */
export function systemCpu() {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0];
    const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
    const toMs = (ticks) => (ticks * 1000) / TICKS_PER_SECOND;
    return { busyMs: toMs(user + nice + system + irq + softirq), stealMs: toMs(steal), at: performance.now() };
  } catch {
    return null;
  }
}

/**
 * CPU used between two snapshots by everything except `ownMs` (the bench's own processes), and
 * CPU stolen by the hypervisor, both as a share of one core. `null` without `/proc/stat`.
 *
 * @param {CpuSnapshot | null} before
 * @param {CpuSnapshot | null} after
 * @param {number} ownMs
 * @returns {{ other: number, steal: number } | null}
 */
export function otherCpu(before, after, ownMs) {
  if (!before || !after) return null;
  const wallMs = after.at - before.at;
  return {
    other: Math.max(0, after.busyMs - before.busyMs - ownMs) / wallMs,
    steal: (after.stealMs - before.stealMs) / wallMs,
  };
}

/**
 * Waits (at most `maxMs`) until the machine is quiet: under `threshold` of one core busy or stolen
 * over a 500 ms sample. Call it while the bench's own processes are idle.
 *
 * @param {number} [maxMs]
 * @param {number} [threshold]
 * @returns {Promise<boolean>} whether it became quiet
 */
export async function waitForQuiet(maxMs = 3_000, threshold = 0.15) {
  const deadline = performance.now() + maxMs;
  while (performance.now() < deadline) {
    const before = systemCpu();
    await sleep(500);
    const load = otherCpu(before, systemCpu(), 0);
    if (!load || load.other + load.steal < threshold) return true;
  }
  return false;
}

/** A one-line description of the machine. */
export function machine() {
  const cpus = os.cpus();
  return `${cpus.length} cores (${cpus[0]?.model.trim() ?? 'unknown CPU'}), Node ${process.version}, ${os.platform()} ${os.release()}`;
}
