import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';

// Rollback protection across restarts: the `seq` of the last index accepted from each
// `releases.json`, kept beside the release cache. Without it a restarted host would accept a
// replayed older index once.

const FILE = 'accepted-seq.json';

/** The index accepted last: its `seq` and the sha256 of its claims. */
export interface AcceptedIndex {
  seq: number;
  claimsSha256: string | null;
}

/**
 * The index last accepted from `location`; seq 0 when none was (or the record is unreadable).
 *
 * @example
 * const accepted = await readAcceptedSeq('.favn/releases', 'https://cdn.example.com/x/releases.json')
 */
export async function readAcceptedSeq(cacheDir: string, location: string): Promise<AcceptedIndex> {
  const record = (await readAll(cacheDir))[location] as Partial<AcceptedIndex> | undefined;
  const seq = record?.seq;
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq)) return { seq: 0, claimsSha256: null };
  return { seq, claimsSha256: typeof record?.claimsSha256 === 'string' ? record.claimsSha256 : null };
}

/**
 * Remembers that this index was accepted from `location`.
 *
 * @example
 * await writeAcceptedSeq('.favn/releases', location, { seq: 4, claimsSha256 })
 */
export async function writeAcceptedSeq(cacheDir: string, location: string, accepted: AcceptedIndex): Promise<void> {
  const all = await readAll(cacheDir);
  all[location] = accepted;
  await mkdir(cacheDir, { recursive: true });
  const file = path.join(cacheDir, FILE);
  const partial = `${file}.${process.pid}.partial`;
  await writeFile(partial, `${JSON.stringify(all, null, 2)}\n`);
  await rename(partial, file);
}

async function readAll(cacheDir: string): Promise<Record<string, unknown>> {
  try {
    const value: unknown = JSON.parse(await readFile(path.join(cacheDir, FILE), 'utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : {};
  } catch {
    return {};
  }
}
