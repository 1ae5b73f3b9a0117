import path from 'node:path';
import type { ServerFnsOptions } from './options.js';

/** Where the feature keeps what the dev server must never send; absolute paths with `/`. */
export interface PrivateFiles {
  root: string;
  /** Folders refused with everything inside: the database, the server build. */
  dirs: string[];
  /** Single files refused: the manifest. */
  files: string[];
}

/** How Vite maps a request path onto the disk: the root, `publicDir` (`''` if off) and `base`. */
export interface ServedDirs {
  root: string;
  publicDir: string;
  base: string;
}

/** The folder of the dev database (`.favn/db` and its lock) in every feature repo. */
const DATA_DIR = '.favn';
const DEFAULT_SERVER_OUT_DIR = 'dist-server';
const DEFAULT_MANIFEST = 'feature.json';
/** How many layers of percent-encoding are peeled off a request path (`%252e` is two). */
const MAX_DECODES = 3;

/**
 * The private files of a feature repo for a resolved root and the plugin's options.
 *
 * @example
 * privateFiles('/repo', {}).dirs // ['/repo/.favn', '/repo/dist-server']
 */
export function privateFiles(root: string, options: ServerFnsOptions): PrivateFiles {
  const at = (file: string) => slash(path.resolve(root, file));
  const dirs = [at(DATA_DIR), at(DEFAULT_SERVER_OUT_DIR), at(options.serverOutDir ?? DEFAULT_SERVER_OUT_DIR)];
  const files = [at(DEFAULT_MANIFEST), at(options.manifest ?? DEFAULT_MANIFEST)];
  return { root: slash(path.resolve(root)), dirs: [...new Set(dirs)], files: [...new Set(files)] };
}

/**
 * `server.fs.deny` patterns for the private files. Vite matches them case-insensitively against
 * absolute paths, on `/@fs/`, root-relative URLs and `?raw`/`?url`/`?inline`/`?import` alike.
 *
 * @example
 * privateDenyGlobs(privateFiles('/repo', {})).includes('/repo/dist-server/**') // true
 */
export function privateDenyGlobs(files: PrivateFiles): string[] {
  const globs = ['.env*', `**/${DATA_DIR}`, `**/${DATA_DIR}/**`];
  for (const dir of files.dirs) globs.push(escapeGlob(dir), `${escapeGlob(dir)}/**`);
  for (const file of files.files) globs.push(escapeGlob(file));
  return globs;
}

/**
 * Every file a request URL could reach through Vite's dev middlewares: its path decoded once or
 * more, with or without `base`, `/@fs/` and `/@id/`, taken as absolute, root- and public-relative.
 * Windows spellings (`\`, trailing dots and spaces, `::$DATA`) are folded as Windows would.
 *
 * @example
 * candidatePaths('/%2efavn/db?raw', { root: '/repo', publicDir: '/repo/public', base: '/' })
 * // includes '/repo/.favn/db'
 */
export function candidatePaths(url: string, dirs: ServedDirs): string[] {
  const rawPath = url.split(/[?#]/, 1)[0] ?? '';
  const found = new Set<string>();
  for (const decoded of decodings(rawPath)) {
    for (const form of [decoded, decoded.split(/[?#]/, 1)[0] ?? '']) {
      for (const urlPath of withoutPrefixes(normalizeUrlPath(form), dirs.base)) {
        found.add(toFsPath(urlPath));
        found.add(slash(path.join(dirs.root, urlPath)));
        if (dirs.publicDir) found.add(slash(path.join(dirs.publicDir, urlPath)));
      }
    }
  }
  return [...found];
}

/**
 * True if an absolute path is a private file or inside a private folder. Compared without case,
 * since macOS and Windows disks serve `/.FAVN/` from `.favn/`.
 *
 * @example
 * isPrivatePath('/repo/.favn/db/PG_VERSION', privateFiles('/repo', {})) // true
 */
export function isPrivatePath(file: string, files: PrivateFiles): boolean {
  const target = slash(file).toLowerCase();
  const within = (dir: string) => target === dir.toLowerCase() || target.startsWith(`${dir.toLowerCase()}/`);
  if (files.dirs.some(within) || files.files.some((f) => target === f.toLowerCase())) return true;
  const root = files.root.toLowerCase();
  if (target === root) return false;
  // Inside the repo every segment counts (`.env.local`, `sub/.favn/`); outside it only the file
  // name, so a repo kept under a folder such as `~/.envs/` still works.
  const inRoot = target.startsWith(`${root}/`);
  const segments = (inRoot ? target.slice(root.length + 1) : target).split('/');
  if (segments.includes(DATA_DIR)) return true;
  const checked = inRoot ? segments : segments.slice(-1);
  return checked.some((segment) => segment.startsWith('.env'));
}

/** The path as given and each layer of percent-decoding of it. */
function decodings(rawPath: string): string[] {
  const forms = [rawPath];
  let current = rawPath;
  for (let i = 0; i < MAX_DECODES && current.includes('%'); i++) {
    let next: string;
    try {
      next = decodeURIComponent(current);
    } catch {
      // A malformed sequence elsewhere must not hide a valid `%2e` or `%2f`.
      next = current.replace(/%([0-9a-f]{2})/gi, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
    }
    if (next === current) break;
    forms.push(next);
    current = next;
  }
  return forms;
}

/** `/`-separated, leading `/`, no empty, `.` or `..` segments, Windows-only spellings folded. */
function normalizeUrlPath(urlPath: string): string {
  const segments = urlPath
    .replace(/\\/g, '/')
    .split('/')
    .map((segment) => {
      if (segment === '.' || segment === '..') return segment;
      // `feature.json::$DATA` and `.favn.` / `.favn ` open the same file on Windows.
      const stream = segment.replace(/^([^:]+):(?!$).*$/, '$1');
      const trimmed = stream.replace(/[. ]+$/, '');
      return trimmed === '' || trimmed === '.' || trimmed === '..' ? stream : trimmed;
    });
  return path.posix.normalize(`/${segments.join('/')}`).replace(/\/+$/, '') || '/';
}

/** The path, without `base`, and with Vite's `/@fs/` and `/@id/` prefixes peeled off in turn. */
function withoutPrefixes(urlPath: string, base: string): string[] {
  const forms = [urlPath];
  const trimmedBase = base.replace(/\/+$/, '');
  if (trimmedBase.startsWith('/') && urlPath.startsWith(`${trimmedBase}/`)) {
    forms.push(urlPath.slice(trimmedBase.length));
  }
  for (let i = 0; i < forms.length && forms.length < 8; i++) {
    const form = forms[i] as string;
    const peeled = form.replace(/^\/@(?:fs|id)(?=\/)/, '').replace(/^\/__x00__/, '/');
    if (peeled !== form) forms.push(normalizeUrlPath(peeled));
  }
  return forms;
}

/** A URL path taken as an absolute file path (`/C:/x` is `C:/x` on Windows). */
function toFsPath(urlPath: string): string {
  return /^\/[a-z]:\//i.test(urlPath) ? urlPath.slice(1) : urlPath;
}

function escapeGlob(file: string): string {
  return file.replace(/[()[\]{}*?!+@|]/g, '\\$&');
}

function slash(file: string): string {
  return file.replace(/\\/g, '/');
}
