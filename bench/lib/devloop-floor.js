/**
 * The floor under the dev-loop bench's warm start: what its two largest parts cost alone, in the
 * same run. Vite alone (the app without the plugin: spawn to the first 200 of its page) and PGlite
 * alone (opening the app's existing `.favn/db` as the host does, in a process of its own, timed
 * inside it). Both run on one thread in a dev server, so the floor is their sum.
 */
import { execFile } from 'node:child_process';
import { cp, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pollUntil } from './devloop-calls.js';
import { spawnViteDev } from './devloop-vite.js';

const PGLITE_CLIENT = new URL('../../dist/devserver/data/pglite-client.js', import.meta.url).href;

/**
 * A copy of the app in `dir` whose `vite.config` has no plugin, beside it: Vite alone.
 *
 * @param {string} dir the app's folder (left as it is)
 * @returns {Promise<string>} the copy's folder
 */
export async function viteAloneApp(dir) {
  const copy = `${dir}-vite-alone`;
  await cp(dir, copy, { recursive: true, filter: (source) => !source.includes(`${path.sep}.favn`) });
  await writeFile(path.join(copy, 'vite.config.ts'), `export default { cacheDir: '.vite-cache' };\n`);
  return copy;
}

/**
 * A copy of the app in `dir` for the reload's floor: no plugin of this project, and a middleware
 * of a few lines that answers `POST /rpc/feature-bench-devloop/version` by loading `src/floor.ts`
 * with Vite's own `server.ssrLoadModule` and calling its `version()`. Vite's watcher and module
 * graph alone decide when a save is seen (`devloop-calls.js`, `VITE_ALONE`).
 *
 * @param {string} dir the app's folder (left as it is)
 * @returns {Promise<string>} the copy's folder
 */
export async function viteReloadApp(dir) {
  const copy = `${dir}-vite-reload`;
  await cp(dir, copy, { recursive: true, filter: (source) => !source.includes(`${path.sep}.favn`) });
  await writeFile(path.join(copy, 'vite.config.ts'), RELOAD_FLOOR_CONFIG);
  return copy;
}

const RELOAD_FLOOR_CONFIG = `import type { Plugin } from 'vite';

const version: Plugin = {
  name: 'reload-floor',
  configureServer(server) {
    server.middlewares.use('/rpc/feature-bench-devloop/version', async (req, res) => {
      for await (const _ of req);
      try {
        const mod = await server.ssrLoadModule('/src/floor.ts');
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify(await mod.version()));
      } catch (error) {
        res.statusCode = 500;
        res.end(String(error));
      }
    });
  },
};

export default { cacheDir: '.vite-cache', plugins: [version] };
`;

/**
 * Spawn to the first 200 of `GET /` of `vite` dev in `dir`.
 *
 * @param {string} dir
 * @param {number} limitMs
 * @returns {Promise<number>}
 */
export async function viteStartMs(dir, limitMs) {
  const dev = await spawnViteDev(dir);
  try {
    const page = async () => {
      const res = await fetch(`${dev.url}/`);
      await res.arrayBuffer();
      return { ok: res.status === 200, status: res.status };
    };
    const first = await Promise.race([dev.failed, pollUntil(page, undefined, limitMs)]);
    return first.at - dev.spawnedAt;
  } finally {
    await dev.stop();
  }
}

/**
 * Opening the PGlite folder `dataDir` (which no process may have open) and a first query, as the
 * host opens it, timed inside a fresh process after its imports.
 *
 * @param {string} dataDir
 * @returns {Promise<number>}
 */
export function pgliteOpenMs(dataDir) {
  const script = `
    const { openPglite } = await import(${JSON.stringify(PGLITE_CLIENT)});
    const started = performance.now();
    const client = await openPglite(${JSON.stringify(dataDir)});
    await client.pglite.query('SELECT 1');
    const ms = performance.now() - started;
    await client.close();
    console.log(JSON.stringify({ ms }));
  `;
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--input-type=module', '-e', script],
      { cwd: fileURLToPath(new URL('../..', import.meta.url)), timeout: 60_000 },
      (error, stdout, stderr) => {
        if (error) return reject(new Error(`devloop: opening ${dataDir} alone failed: ${error.message}\n${stderr}`));
        resolve(JSON.parse(stdout.trim().split('\n').pop() ?? '{}').ms);
      },
    );
  });
}
