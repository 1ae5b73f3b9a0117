/**
 * What the fuzzer owes each request, and the shapes of its cases. Kept apart from the
 * generator so the judge and the generator share one vocabulary.
 */
import { requestBytes } from './fuzz-wire.js';

/**
 * @typedef {object} Expect
 * @property {'rpc' | 'parser' | 'page' | 'gone'} kind `rpc`: an answer in the RPC contract
 *   (SPEC §4); `parser`: broken at the HTTP level, so a 4xx or a closed connection; `page`: a
 *   path outside `/rpc/`, any answer below 500; `gone`: the client gave up, nothing is owed
 * @property {number[]} [statuses] only these statuses (rpc)
 * @property {number[]} [extra] statuses the function itself may choose, besides the contract's
 * @property {string} [requestId] the `x-request-id` the client sent, if any
 * @property {boolean} [head] answers a HEAD request: no body to check
 * @property {boolean} [mayClose] the host may close instead of answering (it refused a body mid-send)
 * @property {boolean} [simple] a quick valid call: anything but 200/429 is worth a look
 */

/**
 * @typedef {object} FuzzCase
 * @property {string} cls the request class
 * @property {string} label what was sent, in one short line
 * @property {import('./fuzz-socket.js').Plan} plan
 * @property {Expect[]} expects one per answer the plan waits for
 */

/** Statuses of the RPC contract table (SPEC §4); 415 is tolerated for a wrong content type. */
export const CONTRACT_STATUSES = [200, 400, 401, 403, 404, 405, 413, 415, 422, 429, 500, 502, 503];
/** A quick valid call: served, rate limited, or (counted apart) timed out under load. */
export const SIMPLE_STATUSES = [200, 429, 503];
/** A request the route cannot match or the host must refuse before any function runs. */
export const REFUSED_STATUSES = [400, 403, 404, 405];

/**
 * A case of one request sent in one write.
 *
 * @param {string} cls
 * @param {string} label
 * @param {import('./fuzz-wire.js').RequestSpec} spec
 * @param {Expect} expect
 * @returns {FuzzCase}
 */
export function oneRequest(cls, label, spec, expect) {
  return {
    cls,
    label,
    plan: { parts: [{ bytes: requestBytes(spec) }], responses: 1, heads: [spec.method === 'HEAD'] },
    expects: [{ ...expect, head: spec.method === 'HEAD' }],
  };
}

/** A shortened, printable form of a target or body for labels. */
export function shorten(value, max = 80) {
  const text = Buffer.isBuffer(value) ? value.toString('latin1') : String(value);
  const printable = JSON.stringify(text.length > max ? `${text.slice(0, max)}…(${text.length})` : text);
  return printable.replace(/[\u0080-\uffff]/g, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
