/**
 * The dev-loop bench's two apps as a client calls them, and the polling that times a start and a
 * reload: one call in flight, the next one 5 ms after the previous answer.
 */
import { setTimeout as sleep } from 'node:timers/promises';

/** Pause between polls. */
export const POLL_MS = 5;
const CALL_TIMEOUT_MS = 10_000;

/**
 * @typedef {object} App
 * @property {string} name
 * @property {string} folder fixture folder under `bench/devloop/`
 * @property {string} module the server module the bench rewrites, relative to the app folder
 * @property {(value: string) => string} source that module, returning `value` from `version()`
 * @property {(url: string) => Promise<{ ok: boolean, value?: unknown, status: number }>} version calls `version()`
 * @property {((url: string) => Promise<{ ok: boolean, value?: unknown, status: number }>)} [table] a call that reads the database
 */

const FEATURE_ID = 'feature-bench-devloop';

/**
 * This project: `POST /rpc/{featureId}/{fn}` with `{ args }`, the value as the JSON body.
 *
 * @type {App}
 */
export const OURS = {
  name: 'ours',
  folder: 'ours',
  module: 'src/devloop.server.ts',
  source: (value) =>
    `import { queryRows } from '@favn/vite-plugin-server-fns/server';\n\n` +
    `export const listItems = queryRows('items', { maxLimit: 50 });\n\n` +
    `export async function version() {\n  return ${JSON.stringify(value)};\n}\n`,
  version: (url) => rpc(url, 'version'),
  table: (url) => rpc(url, 'listItems', [{ limit: 5 }]),
};

/**
 * The reload's floor: Vite alone serving `version()` from a plain module that it loads again
 * after a save (`viteReloadApp` in `devloop-floor.js`), called as this project is called.
 *
 * @type {App}
 */
export const VITE_ALONE = {
  name: 'vite alone',
  folder: 'ours',
  module: 'src/floor.ts',
  source: (value) => `export async function version() {\n  return ${JSON.stringify(value)};\n}\n`,
  version: (url) => rpc(url, 'version'),
};

/**
 * Telefunc: `POST /_telefunc` with `{ file, name, args }` as text, the value as `{ ret }`.
 *
 * @type {App}
 */
export const TELEFUNC = {
  name: 'telefunc',
  folder: 'telefunc',
  module: 'src/devloop.telefunc.ts',
  source: (value) => `export async function version() {\n  return ${JSON.stringify(value)};\n}\n`,
  version: (url) => telefuncCall(url, '/src/devloop.telefunc.ts', 'version'),
};

/**
 * Calls until `call` answers `expected` (any 200 when `undefined`), or `limitMs` passes.
 * Resolves with when that answer arrived and how many calls failed meanwhile (no answer, or not
 * a 200); answers of the old value are not failures.
 *
 * @param {() => Promise<{ ok: boolean, value?: unknown }>} call
 * @param {unknown} expected
 * @param {number} limitMs
 * @returns {Promise<{ at: number, failures: number, calls: number }>}
 */
export async function pollUntil(call, expected, limitMs) {
  const until = performance.now() + limitMs;
  let failures = 0;
  let calls = 0;
  let last = '';
  for (;;) {
    calls++;
    const answer = await call().catch((error) => ({ ok: false, error: error.message }));
    if (answer.ok && (expected === undefined || answer.value === expected)) {
      return { at: performance.now(), failures, calls };
    }
    if (!answer.ok) failures++;
    last = JSON.stringify(answer);
    if (performance.now() > until) throw new Error(`no expected answer within ${limitMs} ms; last: ${last}`);
    await sleep(POLL_MS);
  }
}

/** One call of this project's RPC route. */
async function rpc(url, fn, args = []) {
  const response = await fetch(`${url}/rpc/${FEATURE_ID}/${fn}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ args }),
    signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
  });
  const text = await response.text();
  if (response.status !== 200) return { ok: false, status: response.status, text: text.slice(0, 200) };
  return { ok: true, status: 200, value: JSON.parse(text) };
}

/** One call as Telefunc's browser client makes it (a text request; arguments plain JSON). */
async function telefuncCall(url, file, name, args = []) {
  const response = await fetch(`${url}/_telefunc`, {
    method: 'POST',
    headers: { 'content-type': 'text/plain', 'x-telefunc-request': 'txt' },
    body: JSON.stringify({ file, name, args }),
    signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
  });
  const text = await response.text();
  if (response.status !== 200) return { ok: false, status: response.status, text: text.slice(0, 200) };
  return { ok: true, status: 200, value: JSON.parse(text).ret };
}
