/** Memory of a host process as the kernel counts it (Linux `/proc`), in MB. */
import { readFileSync } from 'node:fs';

/**
 * @typedef {object} Rss
 * @property {number} rssMb resident set (VmRSS)
 * @property {number} anonMb anonymous part: heaps, malloc arenas, wasm memories (RssAnon)
 * @property {number} fileMb file-backed part: code, mapped files (RssFile)
 * @property {number} peakMb highest resident set so far (VmHWM)
 * @property {number} threads
 */

/**
 * The host's resident memory now, or null where `/proc` is not there.
 *
 * @param {number} pid
 * @returns {Rss | null}
 */
export function readRss(pid) {
  let status;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return null;
  }
  const kb = (field) => Number(new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN);
  const mb = (field) => Math.round(kb(field) / 102.4) / 10;
  return {
    rssMb: mb('VmRSS'),
    anonMb: mb('RssAnon'),
    fileMb: mb('RssFile'),
    peakMb: mb('VmHWM'),
    threads: kb('Threads'),
  };
}

/** Start addresses of glibc's per-thread malloc arenas are aligned to their 64 MiB size. */
const ARENA_ALIGN = 64n * 1024n * 1024n;
/** V8 reserves guard regions of gigabytes around each WebAssembly memory. */
const WASM_GUARD_KB = 4 * 1024 * 1024;

/**
 * @typedef {object} RssByKind resident MB by what holds it
 * @property {number} wasmMb WebAssembly memories (PGlite's Postgres runs in one)
 * @property {number} mallocMb glibc malloc: the brk heap and the per-thread arenas
 * @property {number} otherAnonMb other anonymous memory: V8 heaps of the host and of every
 *   isolated-vm isolate, thread stacks, large allocations mapped on their own
 * @property {number} fileMb file-backed: code and mapped files
 */

/**
 * The host's resident memory split by what holds it, from `/proc/<pid>/smaps` (null where that
 * is not there). WebAssembly memories are the writable mappings followed by a guard region of
 * gigabytes; malloc arenas start on a 64 MiB boundary.
 *
 * @param {number} pid
 * @returns {RssByKind | null}
 */
export function readRssByKind(pid) {
  let smaps;
  try {
    smaps = readFileSync(`/proc/${pid}/smaps`, 'utf8');
  } catch {
    return null;
  }
  /** @type {{ start: bigint, sizeKb: number, rssKb: number, perms: string, name: string }[]} */
  const maps = [];
  for (const line of smaps.split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) maps.push({ start: BigInt(`0x${head[1]}`), sizeKb: 0, rssKb: 0, perms: head[3], name: head[4] });
    else if (line.startsWith('Size:')) maps[maps.length - 1].sizeKb = Number(line.split(/\s+/)[1]);
    else if (line.startsWith('Rss:')) maps[maps.length - 1].rssKb = Number(line.split(/\s+/)[1]);
  }
  const kb = { wasm: 0, malloc: 0, otherAnon: 0, file: 0 };
  maps.forEach((m, i) => {
    if (m.name.startsWith('/')) kb.file += m.rssKb;
    else if (m.name === '[heap]') kb.malloc += m.rssKb;
    else if (m.perms.startsWith('rw') && maps[i + 1]?.perms === '---p' && maps[i + 1].sizeKb >= WASM_GUARD_KB)
      kb.wasm += m.rssKb;
    else if (m.start % ARENA_ALIGN === 0n && m.perms.startsWith('rw')) kb.malloc += m.rssKb;
    else kb.otherAnon += m.rssKb;
  });
  const mb = (x) => Math.round(x / 102.4) / 10;
  return { wasmMb: mb(kb.wasm), mallocMb: mb(kb.malloc), otherAnonMb: mb(kb.otherAnon), fileMb: mb(kb.file) };
}
