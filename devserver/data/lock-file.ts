import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { UsageError } from '../common/usage-error.js';

/** Who holds a PGlite folder: its process, since when, and the loopback port it serves it on (if any). */
export interface LockHolder {
  pid: number;
  since: string;
  /** The port on 127.0.0.1 where the holder serves the folder over the PostgreSQL protocol. */
  port?: number;
}

// Folders this process serves over the PostgreSQL protocol, and on which port: written into
// their lock so that other processes connect there instead of opening the folder.
const servedPorts = new Map<string, number>();

/**
 * Takes `<dataDir>.lock` for this process, so two hosts never open one PGlite folder (that
 * corrupts it). A lock whose process is gone is taken over. Returns the release function.
 */
export function acquireLock(dataDir: string): () => void {
  const file = `${dataDir}.lock`;
  const holder = lockHolder(dataDir);
  if (holder) {
    const served = holder.port
      ? `It serves the database on 127.0.0.1:${holder.port}: favn db commands and psql connect there.`
      : `Stop that dev server or favn command first: two processes must never open the same PGlite folder.`;
    const inUse = `The dev database ${dataDir} is in use by process ${holder.pid} (since ${holder.since}).`;
    throw new UsageError(`${inUse} ${served}`, { file });
  }
  writeHolder(dataDir, new Date().toISOString());
  const release = () => {
    if (readHolder(file)?.pid === process.pid) rmSync(file, { force: true });
    process.off('exit', release);
  };
  process.on('exit', release);
  return release;
}

/**
 * Records (or, with `null`, withdraws) the port this process serves `dataDir` on, in its lock
 * when this process holds it now, and in any lock it takes later.
 *
 * @example
 * announcePort('/repo/.favn/db', 5433)
 */
export function announcePort(dataDir: string, port: number | null): void {
  if (port === null) servedPorts.delete(dataDir);
  else servedPorts.set(dataDir, port);
  const holder = readHolder(`${dataDir}.lock`);
  if (holder?.pid === process.pid) writeHolder(dataDir, holder.since);
}

/**
 * The live process that holds `dataDir`, or `null` when the folder is free (or its lock is stale).
 *
 * @example
 * const holder = lockHolder('/repo/.favn/db') // { pid: 4242, since: '…', port: 5433 }
 */
export function lockHolder(dataDir: string): LockHolder | null {
  const holder = readHolder(`${dataDir}.lock`);
  return holder && isAlive(holder.pid) ? holder : null;
}

function writeHolder(dataDir: string, since: string): void {
  const port = servedPorts.get(dataDir);
  writeFileSync(`${dataDir}.lock`, JSON.stringify({ pid: process.pid, since, ...(port ? { port } : {}) }));
}

function readHolder(file: string): LockHolder | null {
  try {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as { pid?: unknown; since?: unknown; port?: unknown };
    if (typeof parsed.pid !== 'number') return null;
    const port = typeof parsed.port === 'number' && Number.isInteger(parsed.port) ? parsed.port : undefined;
    return { pid: parsed.pid, since: String(parsed.since), ...(port ? { port } : {}) };
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
