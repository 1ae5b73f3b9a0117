import { randomUUID } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';

// Rollback protection across restarts: the `seq` of the last index accepted from each
// `releases.json` (per URL and feature), kept beside the release cache. Without it a restarted host
// would accept a replayed older index once.

const FILE = 'accepted-seq.json';

/** The index accepted last: its `seq` and the sha256 of its claims. */
export interface AcceptedIndex {
  seq: number;
  claimsSha256: string | null;
}

/**
 * The index last accepted from `location` for `feature`; seq 0 when none was. A record file that
 * exists but cannot be read throws: without it a replayed older index would be accepted.
 *
 * @example
 * const accepted = await readAcceptedSeq('.favn/releases', 'https://cdn.example.com/x/releases.json', 'feature-x')
 */
export async function readAcceptedSeq(cacheDir: string, location: string, feature: string): Promise<AcceptedIndex> {
  const record = (await readAll(cacheDir))[recordKey(location, feature)] as Partial<AcceptedIndex> | undefined;
  if (record === undefined) return { seq: 0, claimsSha256: null };
  const seq = record?.seq;
  if (typeof record !== 'object' || record === null || typeof seq !== 'number' || !Number.isSafeInteger(seq)) {
    throw new Error(unreadable(cacheDir, `its record of ${location} has no valid "seq"`));
  }
  return { seq, claimsSha256: typeof record.claimsSha256 === 'string' ? record.claimsSha256 : null };
}

// One write at a time in this process: each reads the file the previous one wrote.
let writes: Promise<unknown> = Promise.resolve();

/**
 * Remembers that this index was accepted from `location` for `feature`.
 *
 * @example
 * await writeAcceptedSeq('.favn/releases', location, 'feature-x', { seq: 4, claimsSha256 })
 */
export function writeAcceptedSeq(
  cacheDir: string,
  location: string,
  feature: string,
  accepted: AcceptedIndex,
): Promise<void> {
  const write = writes.then(async () => {
    const all = await readAll(cacheDir);
    all[recordKey(location, feature)] = accepted;
    await mkdir(cacheDir, { recursive: true });
    const file = path.join(cacheDir, FILE);
    const partial = `${file}.${randomUUID()}.partial`;
    try {
      await writeFile(partial, `${JSON.stringify(all, null, 2)}\n`);
      await rename(partial, file);
    } catch (error) {
      await rm(partial, { force: true });
      throw error;
    }
  });
  writes = write.catch(() => {});
  return write;
}

function recordKey(location: string, feature: string): string {
  return `${feature} ${location}`;
}

function unreadable(cacheDir: string, problem: string): string {
  return (
    `${path.join(cacheDir, FILE)} cannot be read (${problem}): it guards against replayed older ` +
    'releases, so no release is accepted until it is fixed or deleted'
  );
}

async function readAll(cacheDir: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(path.join(cacheDir, FILE), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new Error(unreadable(cacheDir, (error as NodeJS.ErrnoException).code ?? 'read error'));
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new Error(unreadable(cacheDir, 'not valid JSON'));
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Error(unreadable(cacheDir, 'not a JSON object'));
  }
  return value as Record<string, unknown>;
}
