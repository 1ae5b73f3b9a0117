import type { Stats } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';

/** How long a file that reads as empty is given to receive its content. */
const SETTLE_ATTEMPTS = 20;
const SETTLE_INTERVAL_MS = 10;

/**
 * Waits (at most 200 ms) while `file` is empty, then gives its stats (`null`: no file). A save is
 * a truncate, then a write: a watcher or a scan can land between the two and see an empty file,
 * which would make every export of a server module vanish until the next save. A file that is
 * really empty costs the wait, once.
 *
 * @example
 * await waitForContent('/repo/src/rules.server.ts')
 */
export async function waitForContent(file: string): Promise<Stats | null> {
  let info: Stats | null = null;
  for (let i = 0; i < SETTLE_ATTEMPTS; i++) {
    info = await stat(file).catch(() => null);
    if (!info || info.size > 0) return info;
    await new Promise((resolve) => setTimeout(resolve, SETTLE_INTERVAL_MS));
  }
  return info;
}

/**
 * The text of `file`, read again (briefly) while it reads as empty, for reads that may race a save.
 *
 * @example
 * const source = await readSettled('/repo/src/rules.server.ts')
 */
export async function readSettled(file: string): Promise<string> {
  let text = await readFile(file, 'utf8');
  for (let i = 0; text === '' && i < SETTLE_ATTEMPTS; i++) {
    await new Promise((resolve) => setTimeout(resolve, SETTLE_INTERVAL_MS));
    text = await readFile(file, 'utf8');
  }
  return text;
}
