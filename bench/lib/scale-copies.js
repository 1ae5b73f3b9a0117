/**
 * The scale bench's features: `scale/feature/` built once with the real `vite build`, then copied
 * under many ids into a folder `favn serve` is started in.
 *
 * A copy is the build's `dist/` and `dist-server/` with only the id of `dist-server/feature.json`
 * changed: the bundles name no feature id, so their `serverFunctionsSha256` and handler `sha256`
 * still match (which `favn serve` checks on load), and each copy gets its own tables (a database
 * schema per feature id), its own isolates and its own module instance.
 */
import { execFile } from 'node:child_process';
import { cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Folder of the scale bench feature, where `vite build` runs. */
export const FEATURE_DIR = fileURLToPath(new URL('../scale/feature/', import.meta.url));

const VITE_BIN = fileURLToPath(new URL('../../node_modules/vite/bin/vite.js', import.meta.url));

/**
 * Builds the feature with `vite build` (its gitignored `dist/` and `dist-server/`).
 *
 * @returns {Promise<number>} milliseconds taken
 */
export function buildFeature() {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [VITE_BIN, 'build'],
      { cwd: FEATURE_DIR, env: { ...process.env, NO_COLOR: '1' }, timeout: 120_000, maxBuffer: 4 << 20 },
      (error, stdout, stderr) => {
        if (error)
          return reject(
            new Error(`scale: vite build of the bench feature failed: ${error.message}\n${stdout}${stderr}`),
          );
        resolve(performance.now() - started);
      },
    );
  });
}

/** Id of copy `i` (0-based). */
export function copyId(i) {
  return `feature-scale-${String(i + 1).padStart(4, '0')}`;
}

/**
 * Writes `count` copies of the built feature into `dir` (one folder per id) and a
 * `favn.config.json` listing them; returns the ids.
 *
 * @param {string} dir
 * @param {number} count
 * @returns {Promise<string[]>}
 */
export async function writeCopies(dir, count) {
  const manifest = JSON.parse(await readFile(path.join(FEATURE_DIR, 'dist-server', 'feature.json'), 'utf8'));
  const ids = Array.from({ length: count }, (_, i) => copyId(i));
  for (const id of ids) {
    const into = path.join(dir, id);
    await mkdir(into, { recursive: true });
    await cp(path.join(FEATURE_DIR, 'dist'), path.join(into, 'dist'), { recursive: true });
    await cp(path.join(FEATURE_DIR, 'dist-server'), path.join(into, 'dist-server'), { recursive: true });
    await writeFile(path.join(into, 'dist-server', 'feature.json'), JSON.stringify({ ...manifest, id }, null, 2));
  }
  await writeFile(path.join(dir, 'favn.config.json'), JSON.stringify({ features: ids.map((id) => `./${id}`) }));
  return ids;
}
