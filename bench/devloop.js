/**
 * Dev-loop bench: how long a developer waits in `vite` dev, for this project and for Telefunc, on
 * two tiny apps (`devloop/ours`: a table in `server/schema.ts`, a `queryRows` and a plain function;
 * `devloop/telefunc`: the same plain function in a `.telefunc.ts` file). Both run under the real
 * `vite` CLI, spawned as a person runs it, with `NODE_OPTIONS=--no-node-snapshot`.
 *
 * - start: from spawning `vite` to the first 200 of `version()` (ours: also the first 200 of the
 *   `queryRows`), polled every 5 ms; ours both without `.favn/db` (cold: PGlite creates and
 *   migrates it) and with it (warm). Each start also prints when Vite printed its "Local:" line,
 *   to show whether Vite waits for the database. Starts interleave (ours cold, ours warm,
 *   Telefunc) after one unmeasured start per app (Vite's dependency cache, the disk cache).
 * - reload: a save of the server module that changes what `version()` returns, to the first
 *   answer with the new value, polled every 5 ms (one call in flight); a call that fails meanwhile
 *   (no answer, or not a 200) counts as a reload failure. The same again in a larger repo
 *   (`reload_many_*`): ours with `MANY_MODULES` handler modules (a query and a mutation each) and as
 *   many plain server modules beside the saved one.
 *
 * - floor: in the same rounds, Vite alone (the app without the plugin, spawn to the first 200 of
 *   its page) and PGlite alone opening the warm start's `.favn/db` (`lib/devloop-floor.js`); both
 *   run on a dev server's main thread, so their sum is what a warm start cannot go under.
 * - reload floor: the same saves and polling against Vite alone (`lib/devloop-floor.js`,
 *   `viteReloadApp`: no plugin of this project; a middleware that loads a plain module with Vite's
 *   `ssrLoadModule` on every call), after the other reloads: what Vite's own watcher and module
 *   reload cost from a save to the new value. Its failed calls are printed, not counted in
 *   `reload_failures`.
 *
 * Start figures are medians, reload figures p50/p95 (nearest rank). The last line printed is one
 * JSON object.
 */
import { randomUUID } from 'node:crypto';
import { cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { OURS, TELEFUNC, VITE_ALONE, pollUntil, POLL_MS } from './lib/devloop-calls.js';
import { pgliteOpenMs, viteAloneApp, viteReloadApp, viteStartMs } from './lib/devloop-floor.js';
import { spawnViteDev } from './lib/devloop-vite.js';
import { median, quantile, round } from './lib/stats.js';
import { machine } from './lib/system.js';

/** Measurement settings (loopback only). */
export const SETTINGS = { starts: 10, reloads: 20, savePauseMs: 250, startLimitMs: 60_000, reloadLimitMs: 15_000 };

const REPO = fileURLToPath(new URL('..', import.meta.url));
const FIXTURES = fileURLToPath(new URL('./devloop/', import.meta.url));
/** Handler modules, and plain modules, added beside the saved one for `reload_many_*`. */
const MANY_MODULES = 30;
/** Saves right after the start can go unseen by the file watcher's initial scan; a person never types that fast. */
const WATCHER_SETTLE_MS = 1_000;

/** Runs the bench and prints its lines. */
export async function run() {
  const { starts, reloads } = SETTINGS;
  console.log('devloop: vite dev, this project (table + queryRows + plain function) vs Telefunc (plain function)');
  console.log(`devloop: ${machine()}`);
  console.log(
    `devloop: ${starts} starts each (ours cold and warm), ${reloads} saves each; calls polled every ${POLL_MS} ms`,
  );
  // Inside the repository, so the apps resolve this package by its own name and Telefunc from node_modules.
  const scratch = path.join(REPO, '.scratch', `bench-devloop-${randomUUID().slice(0, 8)}`);
  try {
    const dirs = {};
    for (const app of [OURS, TELEFUNC]) {
      dirs[app.name] = path.join(scratch, app.folder);
      await mkdir(dirs[app.name], { recursive: true });
      await cp(path.join(FIXTURES, app.folder), dirs[app.name], { recursive: true });
    }
    dirs.many = path.join(scratch, 'many');
    await cp(path.join(FIXTURES, OURS.folder), dirs.many, { recursive: true });
    await addModules(dirs.many, MANY_MODULES);
    const database = path.join(dirs.ours, '.favn', 'db');
    const viteAlone = await viteAloneApp(dirs.ours);
    console.log('devloop: unmeasured first start of each app');
    await timeStart(OURS, dirs.ours);
    await timeStart(TELEFUNC, dirs.telefunc);
    await viteStartMs(viteAlone, SETTINGS.startLimitMs);

    const times = { cold: [], warm: [], telefunc: [] };
    const floor = { vite: [], pglite: [] };
    for (let i = 1; i <= starts; i++) {
      await rm(database, { recursive: true, force: true });
      times.cold.push(report(i, 'ours cold', await timeStart(OURS, dirs.ours)));
      times.warm.push(report(i, 'ours warm', await timeStart(OURS, dirs.ours)));
      times.telefunc.push(report(i, 'telefunc ', await timeStart(TELEFUNC, dirs.telefunc)));
      floor.vite.push(await viteStartMs(viteAlone, SETTINGS.startLimitMs));
      floor.pglite.push(await pgliteOpenMs(database));
      console.log(
        `  floor ${String(i).padStart(2)}: vite alone, first 200 of its page at ${Math.round(floor.vite.at(-1))} ms; ` +
          `PGlite alone opens .favn/db in ${Math.round(floor.pglite.at(-1))} ms`,
      );
    }

    const ours = await timeReloads(OURS, dirs.ours);
    const telefunc = await timeReloads(TELEFUNC, dirs.telefunc);
    const many = await timeReloads({ ...OURS, name: 'ours+60' }, dirs.many);
    const viteReload = await timeReloads(VITE_ALONE, await viteReloadApp(dirs.ours));

    const starts50 = Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v.map((s) => s.firstMs))]));
    for (const [name, ms] of Object.entries(starts50)) {
      console.log(`start ${name.padEnd(8)} median ${Math.round(ms)} ms`);
    }
    const [viteMs, pgliteMs] = [median(floor.vite), median(floor.pglite)];
    console.log(
      `start floor: Vite alone ${Math.round(viteMs)} + PGlite alone ${Math.round(pgliteMs)} = ${Math.round(viteMs + pgliteMs)} ms ` +
        `(warm start ${Math.round(starts50.warm)} ms)`,
    );
    for (const [name, r] of Object.entries({ ours, telefunc, 'ours+60': many, 'vite alone': viteReload })) {
      console.log(
        `reload ${name.padEnd(10)} p50 ${Math.round(r.p50)} ms  p95 ${Math.round(r.p95)} ms  ${r.failures} failed calls`,
      );
    }
    console.log(
      JSON.stringify({
        bench: 'devloop',
        start_warm_ms: round(starts50.warm),
        start_cold_ms: round(starts50.cold),
        reload_p50_ms: round(ours.p50),
        reload_p95_ms: round(ours.p95),
        telefunc_start_ms: round(starts50.telefunc),
        telefunc_reload_p50_ms: round(telefunc.p50),
        reload_failures: ours.failures + many.failures,
        reload_many_p50_ms: round(many.p50),
        reload_many_p95_ms: round(many.p95),
        floor_vite_ms: round(median(floor.vite)),
        floor_pglite_open_ms: round(median(floor.pglite)),
        floor_reload_p50_ms: round(viteReload.p50),
        floor_reload_p95_ms: round(viteReload.p95),
      }),
    );
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/**
 * @typedef {object} Start
 * @property {number | null} localMs Vite's "Local:" line, after the spawn
 * @property {number} firstMs the first 200 of `version()`, after the spawn
 * @property {number | null} tableMs the first 200 of the call that reads the database (ours)
 * @property {number} failures calls that failed before
 */

/**
 * Spawns `vite` dev on `dir`, polls `version()` (and the table call) until it answers, stops it.
 *
 * @param {import('./lib/devloop-calls.js').App} app
 * @param {string} dir
 * @returns {Promise<Start>}
 */
async function timeStart(app, dir) {
  const dev = await spawnViteDev(dir);
  try {
    const poll = (call) => Promise.race([dev.failed, pollUntil(() => call(dev.url), undefined, SETTINGS.startLimitMs)]);
    const first = await poll(app.version);
    const table = app.table ? await poll(app.table) : null;
    const localAt = dev.localAt();
    return {
      localMs: localAt === null ? null : localAt - dev.spawnedAt,
      firstMs: first.at - dev.spawnedAt,
      tableMs: table ? table.at - dev.spawnedAt : null,
      failures: first.failures,
    };
  } catch (error) {
    throw new Error(`${app.name}: ${error.message}\nvite printed:\n${dev.output()}`);
  } finally {
    await dev.stop();
  }
}

/**
 * Adds `count` handler modules and `count` plain server modules to the app in `dir`, declared in
 * its `feature.json`, as a feature grows.
 *
 * @param {string} dir
 * @param {number} count
 */
async function addModules(dir, count) {
  const manifestFile = path.join(dir, 'feature.json');
  const manifest = JSON.parse(await readFile(manifestFile, 'utf8'));
  for (let i = 0; i < count; i++) {
    await writeFile(
      path.join(dir, 'src', `handlers${i}.server.ts`),
      `import { mutation, query, v } from '@favn/vite-plugin-server-fns/server';\n\n` +
        `export const read${i} = query({ args: [v.number()], handler: (_ctx, n) => n + ${i} });\n` +
        `export const write${i} = mutation({ args: [v.string()], handler: (_ctx, s) => s.length + ${i} });\n`,
    );
    await writeFile(
      path.join(dir, 'src', `plain${i}.server.ts`),
      `export async function plain${i}(n: number) {\n  return n * ${i};\n}\n`,
    );
    manifest.serverFunctions.exports.push(`read${i}`, `write${i}`, `plain${i}`);
  }
  await writeFile(manifestFile, `${JSON.stringify(manifest, null, 2)}\n`);
}

/** Prints one start and returns it. */
function report(i, label, start) {
  const ms = (x) => (x === null ? 'n/a' : `${Math.round(x)} ms`);
  const table = start.tableMs === null ? '' : `, queryRows 200 at ${ms(start.tableMs)}`;
  console.log(
    `  start ${String(i).padStart(2)} ${label}: Local: at ${ms(start.localMs).padStart(7)}, first 200 at ${ms(start.firstMs).padStart(7)}${table} (${start.failures} refused/failed calls before)`,
  );
  return start;
}

/**
 * Starts `vite` dev on `dir` and times `SETTINGS.reloads` saves of the app's server module.
 *
 * @param {import('./lib/devloop-calls.js').App} app
 * @param {string} dir
 * @returns {Promise<{ p50: number, p95: number, failures: number }>}
 */
async function timeReloads(app, dir) {
  const file = path.join(dir, app.module);
  // The module as the fixture has it, so the first measured save is a real change.
  await writeFile(file, app.source('v0'));
  const dev = await spawnViteDev(dir);
  const ms = [];
  let failures = 0;
  try {
    await Promise.race([dev.failed, pollUntil(() => app.version(dev.url), 'v0', SETTINGS.startLimitMs)]);
    await sleep(WATCHER_SETTLE_MS);
    for (let i = 1; i <= SETTINGS.reloads; i++) {
      const value = `v${i}`;
      const savedAt = performance.now();
      // As an editor saves: truncate, then write.
      await writeFile(file, app.source(value));
      const seen = await Promise.race([
        dev.failed,
        pollUntil(() => app.version(dev.url), value, SETTINGS.reloadLimitMs),
      ]);
      ms.push(seen.at - savedAt);
      failures += seen.failures;
      await sleep(SETTINGS.savePauseMs);
    }
  } catch (error) {
    throw new Error(`${app.name} reload: ${error.message}\nvite printed:\n${dev.output()}`);
  } finally {
    await dev.stop();
  }
  console.log(`  reload ${app.name.padEnd(10)} ms: ${ms.map((x) => Math.round(x)).join(' ')}`);
  const sorted = [...ms].sort((a, b) => a - b);
  return { p50: quantile(sorted, 0.5), p95: quantile(sorted, 0.95), failures };
}
