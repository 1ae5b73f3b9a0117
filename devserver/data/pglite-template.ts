import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';

/** Written last into a finished template: a folder without it is one whose making was cut short. */
const READY = 'favn-template-ready';

/**
 * Where the initialized, empty PGlite data folder of this PGlite version is kept for new
 * databases: `FAVN_CACHE_DIR`, else `$XDG_CACHE_HOME/favn`, else `~/.cache/favn`.
 *
 * @example
 * templateDir({}) // '/home/ann/.cache/favn/pglite-0.5.14'
 */
export function templateDir(env: Readonly<Record<string, string | undefined>> = process.env): string {
  const cache = env.FAVN_CACHE_DIR || path.join(env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'favn');
  return path.join(cache, `pglite-${pgliteVersion()}`);
}

/**
 * Fills the empty folder `dataDir` with a copy of the template, made once per machine and PGlite
 * version: PGlite's own first start (initdb) takes seconds, a copy a fraction of one. Returns
 * false when `dataDir` holds a database already, or when no template can be made (an unwritable
 * cache: then PGlite initializes the folder itself, as before).
 *
 * @example
 * await seedFromTemplate('/repo/.favn/db')
 */
export async function seedFromTemplate(
  dataDir: string,
  env: Readonly<Record<string, string | undefined>> = process.env,
): Promise<boolean> {
  if (existsSync(path.join(dataDir, 'PG_VERSION'))) return false;
  if (existsSync(dataDir) && readdirSync(dataDir).length > 0) return false;
  const template = await ensureTemplate(templateDir(env));
  if (!template) return false;
  cpSync(template, dataDir, { recursive: true, filter: (source) => path.basename(source) !== READY });
  return true;
}

/** The template folder, made now if it is missing; `null` when it cannot be made. */
async function ensureTemplate(dir: string): Promise<string | null> {
  const data = path.join(dir, 'datadir');
  if (existsSync(path.join(data, READY))) return data;
  // Made aside and renamed into place, so a process that starts meanwhile never copies half of it.
  const making = `${data}.${process.pid}-${Date.now()}`;
  try {
    mkdirSync(dir, { recursive: true });
    const db = new PGlite(making);
    await db.waitReady;
    await db.close();
    writeFileSync(path.join(making, READY), '');
    // Templates are renamed into place finished: one without its mark is not ours to keep.
    if (existsSync(data) && !existsSync(path.join(data, READY))) rmSync(data, { recursive: true, force: true });
    try {
      renameSync(making, data);
    } catch {
      // Another process finished its template first: use that one.
      rmSync(making, { recursive: true, force: true });
    }
    return existsSync(path.join(data, READY)) ? data : null;
  } catch {
    try {
      rmSync(making, { recursive: true, force: true });
    } catch {
      // Nothing was made (a cache path that cannot hold folders).
    }
    return null;
  }
}

/** The installed PGlite's version: a template of another version is never used. */
function pgliteVersion(): string {
  try {
    // The package exports no package.json: find it above its resolved entry.
    let dir = path.dirname(createRequire(import.meta.url).resolve('@electric-sql/pglite'));
    for (let i = 0; i < 5; i++, dir = path.dirname(dir)) {
      const file = path.join(dir, 'package.json');
      if (!existsSync(file)) continue;
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === '@electric-sql/pglite' && pkg.version) return pkg.version;
    }
  } catch {
    // Fall through.
  }
  return 'unknown';
}
