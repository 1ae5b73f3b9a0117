import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { UsageError } from '../common/usage-error.js';

/**
 * Takes `<dataDir>.lock` for this process, so two hosts never open one PGlite folder (that
 * corrupts it). A lock whose process is gone is taken over. Returns the release function.
 */
export function acquireLock(dataDir: string): () => void {
  const file = `${dataDir}.lock`;
  const holder = readHolder(file);
  if (holder && isAlive(holder.pid)) {
    throw new UsageError(
      `The dev database ${dataDir} is in use by process ${holder.pid} (since ${holder.since}). ` +
        `Stop that dev server or favn command first: two processes must never open the same PGlite folder.`,
      { file },
    );
  }
  writeFileSync(file, JSON.stringify({ pid: process.pid, since: new Date().toISOString() }));
  const release = () => {
    if (readHolder(file)?.pid === process.pid) rmSync(file, { force: true });
    process.off('exit', release);
  };
  process.on('exit', release);
  return release;
}

function readHolder(file: string): { pid: number; since: string } | null {
  try {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as { pid?: unknown; since?: unknown };
    return typeof parsed.pid === 'number' ? { pid: parsed.pid, since: String(parsed.since) } : null;
  } catch {
    return null;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
