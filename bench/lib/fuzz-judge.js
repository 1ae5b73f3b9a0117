/**
 * Judges what a host answered to one fuzz case against what it owes (SPEC §4 for `/rpc/`, and
 * for every path: an answer below 500, in time, without the planted secret).
 */
import { CONTRACT_STATUSES } from './fuzz-expect.js';

/** An incoming request id the host may keep (SPEC §4); anything else gets a fresh UUID. */
const SAFE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Error messages are capped at 4 KiB and marked as cut; room for the mark. */
const MAX_ERROR_BYTES = 4096 + 64;

/**
 * @typedef {object} Verdict
 * @property {'ok' | 'non_contract' | 'hang'} verdict
 * @property {string | null} reason what was wrong
 * @property {(number | string)[]} answers each answer's status, or how the connection ended
 * @property {boolean} simpleTimeout a quick valid call answered 503 (timed out under load)
 */

/**
 * @param {import('./fuzz-expect.js').FuzzCase} fuzzCase
 * @param {import('./fuzz-socket.js').Outcome} outcome
 * @param {string} marker the secret no answer may contain
 * @returns {Verdict}
 */
export function judge(fuzzCase, outcome, marker) {
  const answers = outcome.responses.map((r) => r.status);
  const result = (verdict, reason, simpleTimeout = false) => ({
    verdict,
    reason,
    answers: answers.length ? answers : [outcome.outcome],
    simpleTimeout,
  });
  for (const response of outcome.responses) {
    const leaked =
      response.body.includes(marker) ||
      Object.values(response.headers).some((values) => values.some((v) => v.includes(marker)));
    if (leaked) return result('non_contract', 'the answer contains the secret planted in .env.local');
  }
  if (outcome.malformed) return result('non_contract', `malformed HTTP from the host: ${outcome.malformed}`);
  let simpleTimeout = false;
  for (let i = 0; i < fuzzCase.expects.length; i++) {
    const expect = fuzzCase.expects[i];
    const response = outcome.responses[i];
    if (!response) {
      if (expect.kind === 'gone') continue;
      if (outcome.outcome === 'hang')
        return result(
          'hang',
          `no answer within the hang limit (${outcome.sentAll ? 'request fully sent' : 'host stopped reading'})`,
        );
      if (expect.kind === 'parser' || expect.mayClose) continue;
      return result(
        'non_contract',
        `no answer: the host ${outcome.outcome === 'reset' ? 'reset' : 'closed'} the connection`,
      );
    }
    const problem = problemOf(response, expect);
    if (problem) return result('non_contract', problem);
    if (expect.simple && response.status === 503) simpleTimeout = true;
  }
  return result('ok', null, simpleTimeout);
}

/**
 * What is wrong with one answer, or null.
 *
 * @param {import('./fuzz-wire.js').WireResponse} response
 * @param {import('./fuzz-expect.js').Expect} expect
 * @returns {string | null}
 */
function problemOf(response, expect) {
  const { status } = response;
  if (expect.kind === 'parser')
    return status >= 400 && status < 500
      ? null
      : `status ${status} to a request broken at the HTTP level (want 4xx or a closed connection)`;
  if (expect.kind === 'page' || expect.kind === 'gone')
    return status < 500 ? null : `status ${status} outside /rpc/ (want below 500)${excerpt(response)}`;
  const allowed = expect.statuses ?? [...CONTRACT_STATUSES, ...(expect.extra ?? [])];
  const contract = [...CONTRACT_STATUSES, ...(expect.extra ?? [])];
  if (!allowed.includes(status) || !contract.includes(status))
    return `status ${status}, want ${allowed.join('/')}${excerpt(response)}`;
  const ids = response.headers['x-request-id'] ?? [];
  if (ids.length !== 1) return `${ids.length} x-request-id headers (want one)${excerpt(response)}`;
  const id = ids[0];
  const sent = expect.requestId;
  const keepsSent = sent !== undefined && SAFE_REQUEST_ID.test(sent);
  if (keepsSent ? id !== sent : !UUID.test(id)) {
    return `x-request-id ${JSON.stringify(id.slice(0, 80))} (sent ${JSON.stringify(sent?.slice(0, 80) ?? null)}: want it back if safe, else a fresh UUID)`;
  }
  if (response.headers['x-injected']) return 'a header injected through x-request-id came back';
  if (expect.head) return null;
  const type = (response.headers['content-type'] ?? []).join(',');
  if (!/^application\/json\b/i.test(type))
    return `content-type ${JSON.stringify(type)} (want application/json)${excerpt(response)}`;
  let body;
  try {
    body = JSON.parse(response.body.toString('utf8'));
  } catch {
    return `body is not JSON${excerpt(response)}`;
  }
  if (status === 200) return null;
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    return `error body is not an object${excerpt(response)}`;
  const keys = Object.keys(body).sort().join(',');
  if (keys !== 'error,requestId' || typeof body.error !== 'string' || typeof body.requestId !== 'string')
    return `error body has keys ${keys} (want error, requestId strings)${excerpt(response)}`;
  if (body.requestId !== id)
    return `requestId ${JSON.stringify(body.requestId)} differs from x-request-id ${JSON.stringify(id)}`;
  if (Buffer.byteLength(body.error) > MAX_ERROR_BYTES)
    return `error message of ${Buffer.byteLength(body.error)} bytes (capped at 4 KiB)${excerpt(response)}`;
  if (status === 429 && !response.headers['retry-after']) return '429 without Retry-After';
  return null;
}

function excerpt(response) {
  const text = response.body.subarray(0, 160).toString('utf8').replace(/\s+/g, ' ');
  return text ? `: ${text}${response.body.length > 160 ? '…' : ''}` : '';
}
