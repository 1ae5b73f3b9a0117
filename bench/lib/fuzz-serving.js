/**
 * Valid calls around the fuzz: before it, enough handler calls at once to grow the isolate pool
 * to its size; after it, the host must still answer valid calls of every kind (a leaked isolate
 * slot or a stuck database connection shows up here as a timeout), several at once.
 */
import { HANDLERS, CRUD } from './fuzz-calls.js';
import { sendPlan } from './fuzz-socket.js';
import { requestBytes } from './fuzz-wire.js';

/** Quick calls that answer 200 on a healthy host: plain, query and mutation handlers, CRUD. */
const CHECKS = [
  [HANDLERS, 'hostName', []],
  [HANDLERS, 'quick', []],
  [HANDLERS, 'version', []],
  [HANDLERS, 'addRule', [{ text: 'after the fuzz', votes: 1 }]],
  [HANDLERS, 'zodChecked', [{ title: 't', count: 1 }]],
];
const CRUD_CHECKS = [
  [CRUD, 'listRules', [{ limit: 1 }]],
  [CRUD, 'addRule', [{ text: 'after the fuzz', votes: 1, kind: 'must' }]],
  [CRUD, 'countRules', []],
];
/** Concurrent rounds: more calls at once than a feature's isolate pool has slots. */
const ROUNDS = 3;
const PARALLEL = 12;

/**
 * Sends the checks (several rounds, `PARALLEL` at once); ok when every one answered 200.
 *
 * @param {number} port
 * @param {boolean} crud whether the host serves the crud feature
 * @returns {Promise<{ ok: boolean, label: string, reason: string }>}
 */
export async function checkServing(port, crud) {
  const checks = crud ? [...CHECKS, ...CRUD_CHECKS] : CHECKS;
  for (let round = 0; round < ROUNDS; round++) {
    const batch = Array.from({ length: PARALLEL }, (_, i) => checks[(round * PARALLEL + i) % checks.length]);
    const outcomes = await Promise.all(
      batch.map(async ([featureId, fn, args]) => {
        const bytes = requestBytes({
          method: 'POST',
          target: `/rpc/${featureId}/${fn}`,
          host: `127.0.0.1:${port}`,
          headers: [['Content-Type', 'application/json']],
          body: JSON.stringify({ args }),
        });
        const outcome = await sendPlan(port, { parts: [{ bytes }], responses: 1 }, { hangMs: 15_000 });
        return { label: `${featureId}/${fn}`, outcome };
      }),
    );
    for (const { label, outcome } of outcomes) {
      const response = outcome.responses[0];
      if (response?.status !== 200) {
        const body = response ? response.body.subarray(0, 200).toString('utf8') : outcome.outcome;
        return { ok: false, label, reason: `valid call answered ${response?.status ?? 'nothing'}: ${body}` };
      }
    }
  }
  return { ok: true, label: '', reason: '' };
}

/**
 * Grows the handlers feature's isolate pool to its size before the baseline memory reading: the
 * pool keeps every isolate it ever started (each with its own heap), so a pool that first grows
 * during the fuzz would read as growth. `dice` burns a few milliseconds of CPU, long enough for
 * 16 calls to overlap.
 *
 * @param {number} port
 * @param {number} [calls]
 */
export async function fillIsolatePool(port, calls = 64) {
  const bytes = requestBytes({
    method: 'POST',
    target: `/rpc/${HANDLERS}/dice`,
    host: `127.0.0.1:${port}`,
    headers: [['Content-Type', 'application/json']],
    body: '{"args":["warm"]}',
  });
  for (let sent = 0; sent < calls; sent += PARALLEL_FILL) {
    await Promise.all(
      Array.from({ length: PARALLEL_FILL }, () =>
        sendPlan(port, { parts: [{ bytes }], responses: 1 }, { hangMs: 15_000 }),
      ),
    );
  }
}

/** More calls at once than any pool has isolates (8 by default). */
const PARALLEL_FILL = 16;

/**
 * Diagnostics: runs every isolate of the handlers feature out of memory (`bombArrays`), so the
 * pool disposes them all; the RSS read afterwards is the host's without any isolate heap.
 *
 * @param {number} port
 */
export async function emptyIsolatePool(port) {
  const bytes = requestBytes({
    method: 'POST',
    target: `/rpc/${HANDLERS}/bombArrays`,
    host: `127.0.0.1:${port}`,
    headers: [['Content-Type', 'application/json']],
    body: '{"args":[]}',
  });
  await Promise.all(
    Array.from({ length: PARALLEL_FILL }, () =>
      sendPlan(port, { parts: [{ bytes }], responses: 1 }, { hangMs: 60_000 }),
    ),
  );
}
