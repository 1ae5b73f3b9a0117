/**
 * Diagnostics preload for a fuzzed host (`node --expose-gc --require fuzz-gc-preload.cjs ...`):
 * on SIGUSR2 it collects garbage and writes the process's memory breakdown as JSON to
 * `FAVN_FUZZ_MEMORY_FILE`. Only the fuzzer's `--gc` mode loads it; a host started as users start
 * it has no such handler.
 */
'use strict';
const { writeFileSync } = require('node:fs');
const v8 = require('node:v8');

const MB = 1024 * 1024;
const file = process.env.FAVN_FUZZ_MEMORY_FILE;

process.on('SIGUSR2', () => {
  if (typeof global.gc === 'function') {
    // Twice: the first pass may only queue finalizers that free more.
    global.gc();
    global.gc();
  }
  const usage = process.memoryUsage();
  const heap = v8.getHeapStatistics();
  const report = {
    gc: typeof global.gc === 'function',
    rssMb: usage.rss / MB,
    heapTotalMb: usage.heapTotal / MB,
    heapUsedMb: usage.heapUsed / MB,
    externalMb: usage.external / MB,
    arrayBuffersMb: usage.arrayBuffers / MB,
    mallocedMb: heap.malloced_memory / MB,
    peakMallocedMb: heap.peak_malloced_memory / MB,
    nativeContexts: heap.number_of_native_contexts,
    detachedContexts: heap.number_of_detached_contexts,
    handles: process.getActiveResourcesInfo().length,
  };
  if (file) writeFileSync(file, JSON.stringify(report));
});
