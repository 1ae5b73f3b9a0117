/**
 * Sends drawn cases to one host with bounded concurrency and tallies the answers: statuses,
 * classes, non-contract answers and hangs.
 */
import { judge } from './fuzz-judge.js';
import { sendPlan } from './fuzz-socket.js';

/** Findings kept with their full description; the rest are only counted. */
const KEPT_FINDINGS = 50;

/**
 * @typedef {object} Finding
 * @property {string} cls
 * @property {string} label
 * @property {string} reason
 * @property {(number | string)[]} answers
 */

/**
 * @typedef {object} Tally
 * @property {number} requests cases sent
 * @property {Record<string, number>} statuses answers by status (or how the connection ended)
 * @property {Record<string, Record<string, number>>} classes per class: answers by status
 * @property {number} nonContract
 * @property {number} hangs
 * @property {number} simpleTimeouts quick valid calls that timed out (503)
 * @property {Finding[]} findings the first non-contract answers and hangs
 * @property {number} elapsedMs
 */

/**
 * Runs `count` cases from `next` against `port`, `concurrency` at a time, stopping early at
 * `deadline` (a `performance.now()` time).
 *
 * @param {{ port: number, next: () => import('./fuzz-expect.js').FuzzCase, count: number, concurrency: number, hangMs: number, marker: string, deadline: number, onFinding?: (f: Finding) => void }} options
 * @returns {Promise<Tally>}
 */
export async function runCases({ port, next, count, concurrency, hangMs, marker, deadline, onFinding }) {
  /** @type {Tally} */
  const tally = {
    requests: 0,
    statuses: {},
    classes: {},
    nonContract: 0,
    hangs: 0,
    simpleTimeouts: 0,
    findings: [],
    elapsedMs: 0,
  };
  const started = performance.now();
  let drawn = 0;
  async function worker() {
    while (drawn < count && performance.now() < deadline) {
      drawn++;
      const fuzzCase = next();
      const outcome = await sendPlan(port, fuzzCase.plan, { hangMs });
      const verdict = judge(fuzzCase, outcome, marker);
      tally.requests++;
      const byClass = (tally.classes[fuzzCase.cls] ??= {});
      for (const answer of verdict.answers) {
        tally.statuses[answer] = (tally.statuses[answer] ?? 0) + 1;
        byClass[answer] = (byClass[answer] ?? 0) + 1;
      }
      if (verdict.simpleTimeout) tally.simpleTimeouts++;
      if (verdict.verdict === 'ok') continue;
      if (verdict.verdict === 'hang') tally.hangs++;
      else tally.nonContract++;
      const finding = {
        cls: fuzzCase.cls,
        label: fuzzCase.label,
        reason: /** @type {string} */ (verdict.reason),
        answers: verdict.answers,
      };
      if (tally.findings.length < KEPT_FINDINGS) tally.findings.push(finding);
      onFinding?.(finding);
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker));
  tally.elapsedMs = performance.now() - started;
  return tally;
}
