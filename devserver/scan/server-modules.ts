import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { glob } from 'tinyglobby';
import { readSettled } from '../common/settled-file.js';
import { UsageError } from '../common/usage-error.js';
import type { ModuleExports } from './check-exports.js';
import { scanExports, type ScanOptions, type ScanResult } from './scan-exports.js';

const SERVER_MODULE_RE = /\.server\.(?:js|ts|mjs|mts|jsx|tsx)$/;

/** Folders never searched for server modules. */
export const IGNORED_DIRS = ['**/node_modules/**', '**/.*/**', '**/dist/**', '**/dist-server/**'];

/**
 * True for a `*.server.{js,ts,mjs,mts,jsx,tsx}` module id (a query string is ignored).
 *
 * @example
 * isServerModule('/src/actions.server.ts?v=1') // true
 */
export function isServerModule(id: string): boolean {
  const clean = id.split('?', 1)[0] ?? id;
  return SERVER_MODULE_RE.test(clean) && !clean.includes('/node_modules/');
}

/** Absolute paths of the project's server modules, sorted. */
export async function findServerModules(root: string, ignore: readonly string[] = []): Promise<string[]> {
  const files = await glob('**/*.server.{js,ts,mjs,mts,jsx,tsx}', {
    cwd: root,
    absolute: true,
    ignore: [...IGNORED_DIRS, ...ignore],
  });
  return files.map((f) => path.resolve(f)).sort();
}

/** One scanned server module; `file` relative to the root, with `/`. */
export interface ScannedModule extends ModuleExports {
  absolute: string;
  /** False when the module did not parse; its error is in `ProjectScan.errors`. */
  parsed: boolean;
}

/**
 * What scans found, by absolute path and text: a dev server's scans parse only the modules whose
 * text changed (Babel takes about a millisecond per module, on every save).
 */
export type ScanCache = Map<string, { text: string; classify: boolean; result: ScanResult }>;

export interface ProjectScan {
  /** Every server module found, in path order. */
  modules: ScannedModule[];
  /** Syntax errors, `export *`, `export default`, ... */
  errors: UsageError[];
}

/**
 * Finds and scans every server module of a project.
 *
 * @example
 * const { modules, errors } = await scanProject('/repo')
 */
export async function scanProject(
  root: string,
  options: ScanOptions & {
    ignore?: readonly string[];
    /** Files may be mid-save (a dev server's scan after a save): one that reads empty is read again. */
    settle?: boolean;
    /** The server modules, when the caller knows them (a dev server between file creations): no walk. */
    files?: readonly string[];
    /** Results of earlier scans to reuse for unchanged text; it is updated to this scan's. */
    cache?: ScanCache;
  } = {},
): Promise<ProjectScan> {
  const files = options.files ?? (await findServerModules(root, options.ignore));
  const scan: ProjectScan = { modules: [], errors: [] };
  await Promise.all(
    files.map(async (absolute, i) => {
      const file = relativeName(root, absolute);
      try {
        const text = await (options.settle ? readSettled(absolute) : readFile(absolute, 'utf8'));
        const result = scanCached(text, file, absolute, options);
        scan.modules[i] = { file, absolute, exports: result.exports, parsed: true };
        scan.errors.push(...result.errors);
      } catch (error) {
        // A known file that is gone (its deletion unseen) is not there, as a walk would find.
        if (options.files && (error as NodeJS.ErrnoException).code === 'ENOENT') return;
        scan.modules[i] = { file, absolute, exports: [], parsed: false };
        scan.errors.push(
          error instanceof UsageError ? error : new UsageError(`${file}: ${(error as Error).message}`, { file }),
        );
      }
    }),
  );
  if (options.files) scan.modules = scan.modules.filter(Boolean);
  if (options.cache) {
    const found = new Set(files);
    for (const absolute of options.cache.keys()) if (!found.has(absolute)) options.cache.delete(absolute);
  }
  return scan;
}

/** `scanExports`, or what it found for the same text before (the cache keeps the latest text only). */
function scanCached(
  text: string,
  file: string,
  absolute: string,
  options: ScanOptions & { cache?: ScanCache },
): ScanResult {
  const classify = options.classify ?? false;
  const known = options.cache?.get(absolute);
  if (known && known.text === text && known.classify === classify) return known.result;
  // A module that does not parse throws here and is not cached: it is parsed again next time.
  const result = scanExports(text, file, options);
  options.cache?.set(absolute, { text, classify, result });
  return result;
}

/** A path relative to the root with forward slashes, for messages. */
export function relativeName(root: string, file: string): string {
  return path.relative(root, file).split(path.sep).join('/');
}
