import { realpath } from 'node:fs/promises';
import path from 'node:path';
import type { Plugin, ViteDevServer } from 'vite';
import type { ServerFnsOptions } from './options.js';
import { isHostPath } from './dev-host-plugin.js';
import {
  candidatePaths,
  isPrivatePath,
  privateDenyGlobs,
  privateFiles,
  type PrivateFiles,
  type ServedDirs,
} from './private-files.js';

/**
 * Vite's own `server.fs.deny` default (8.x, a superset of 7.x). A `deny` returned from a plugin
 * replaces the default instead of adding to it, so it is repeated unless the user chose their own.
 */
const VITE_DEFAULT_DENY = ['.env', '.env.*', '*.{crt,pem,key,p12,pfx,cer,der}', '.npmrc', '.yarnrc.yml', '**/.git/**'];

/**
 * `vite` dev: never sends the feature's private files (`.favn/` with the dev database,
 * `dist-server/`, `feature.json`, `.env*`). Two layers: the paths join `server.fs.deny`, and a
 * middleware ahead of Vite's own refuses any URL that decodes, normalizes or resolves (through
 * symlinks too) into them, which also holds with `server.fs.strict: false` or a `publicDir` that
 * overlaps the root, where Vite skips its deny list.
 */
export function privateFilesPlugin(options: ServerFnsOptions): Plugin {
  return {
    name: 'favn:private-files',
    apply: 'serve',
    config(config) {
      const root = path.resolve(config.root ?? process.cwd());
      const own = config.server?.fs?.deny ? [] : VITE_DEFAULT_DENY;
      return { server: { fs: { deny: [...own, ...privateDenyGlobs(privateFiles(root, options))] } } };
    },
    configureServer(server: ViteDevServer) {
      const { root, publicDir, base, logger } = server.config;
      const files = privateFiles(root, options);
      const dirs: ServedDirs = { root, publicDir, base };
      const realFiles = realPathsFor(files);
      // Added here, not in a returned hook, so it runs before Vite's static, `/@fs/` and transform
      // middlewares.
      server.middlewares.use(function favnPrivateFiles(req, res, next) {
        const url = req.url ?? '/';
        // The host answers these paths itself and never sends a file for them (nor hands them on).
        if (isHostPath(url)) return next();
        isPrivateRequest(url, dirs, files, realFiles).then(
          (refused) => {
            if (!refused) return next();
            logger.warnOnce(`[favn] Refused ${JSON.stringify(url.split('?', 1)[0])}: ${REFUSAL}`, { timestamp: true });
            res.statusCode = 403;
            res.setHeader('content-type', 'text/plain; charset=utf-8');
            res.end(`403 Forbidden: ${REFUSAL}\n`);
          },
          (error: unknown) => next(error),
        );
      });
    },
  };
}

const REFUSAL = "the dev server never serves the feature's private files (.favn/, dist-server/, feature.json, .env*).";

/** True if any file the URL could reach, as written or after resolving symlinks, is private. */
async function isPrivateRequest(
  url: string,
  dirs: ServedDirs,
  files: PrivateFiles,
  realFiles: () => Promise<PrivateFiles>,
): Promise<boolean> {
  const candidates = candidatePaths(url, dirs);
  if (candidates.some((file) => isPrivatePath(file, files))) return true;
  // A symlink (in the repo, or the repo itself) can lead into a private folder under another name.
  const [real, realCandidates] = await Promise.all([realFiles(), Promise.all(candidates.map(realPathOf))]);
  return realCandidates.some((file) => isPrivatePath(file, files) || isPrivatePath(file, real));
}

/** How long the private files' real paths are reused: a page loads hundreds of modules at once. */
const REAL_PATHS_MS = 1000;

/**
 * The private files' real paths (through symlinks), resolved again once `REAL_PATHS_MS` old; the
 * requested file's own real path is resolved on every request.
 */
function realPathsFor(files: PrivateFiles): () => Promise<PrivateFiles> {
  let cached: { at: number; real: Promise<PrivateFiles> } | null = null;
  return () => {
    const now = performance.now();
    if (!cached || now - cached.at > REAL_PATHS_MS) {
      const real = Promise.all([
        realPathOf(files.root),
        Promise.all(files.dirs.map(realPathOf)),
        Promise.all(files.files.map(realPathOf)),
      ]).then(([root, dirs, list]) => ({ root, dirs, files: list }));
      cached = { at: now, real };
    }
    return cached.real;
  };
}

/** The real path of a file, or of its nearest existing ancestor with the rest appended. */
async function realPathOf(file: string): Promise<string> {
  const rest: string[] = [];
  let head = file;
  for (;;) {
    try {
      return path.join(await realpath(head), ...rest.reverse());
    } catch {
      const parent = path.dirname(head);
      if (parent === head) return file;
      rest.push(path.basename(head));
      head = parent;
    }
  }
}
