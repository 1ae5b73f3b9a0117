/**
 * Sends one fuzz case over its own TCP connection to 127.0.0.1 and waits, bounded in time, for
 * the answers it expects.
 */
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseResponses } from './fuzz-wire.js';

/** The fuzzer only ever talks to this address. */
const LOOPBACK = '127.0.0.1';
/** Received bytes kept per connection; more is counted but dropped (a response that large is its own finding). */
const MAX_KEPT_BYTES = 16 * 1024 * 1024;

/**
 * @typedef {object} Plan
 * @property {{ bytes: Buffer, delayMs?: number }[]} parts written in order, each after its delay
 * @property {number} responses how many responses answer the case when all goes well
 * @property {boolean[]} [heads] per response: it answers a HEAD request (no body)
 * @property {number} [abandonAfterMs] the client goes away this long after its last part, answered or not
 * @property {boolean} [stopOnAnswer] stop writing once an answer arrived (the host refused the rest)
 */

/**
 * @typedef {object} Outcome
 * @property {'answered' | 'closed' | 'reset' | 'hang' | 'abandoned'} outcome `closed`/`reset`:
 *   the host ended the connection before all answers arrived; `hang`: no answer within `hangMs`
 * @property {import('./fuzz-wire.js').WireResponse[]} responses
 * @property {string | null} malformed what was wrong with the host's bytes, if anything
 * @property {boolean} sentAll whether every part was written
 * @property {number} ms from connecting to the outcome
 */

/**
 * Runs one plan. Never rejects: every failure is an outcome.
 *
 * @param {number} port
 * @param {Plan} plan
 * @param {{ hangMs: number }} options
 * @returns {Promise<Outcome>}
 */
export function sendPlan(port, plan, { hangMs }) {
  const started = performance.now();
  return new Promise((resolve) => {
    const socket = net.connect({ host: LOOPBACK, port });
    socket.setNoDelay(true);
    /** @type {Buffer[]} */
    const received = [];
    let kept = 0;
    let ended = false;
    let sentAll = false;
    let done = false;
    let timer = null;
    /** @type {{ responses: import('./fuzz-wire.js').WireResponse[], malformed: string | null }} */
    let parsed = { responses: [], malformed: null };

    const finish = (outcome) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      // Let the host close first (it was asked to), so the client side keeps no TIME_WAIT port.
      if (ended || outcome !== 'answered') socket.destroy();
      else setTimeout(() => socket.destroy(), 1_000).unref();
      resolve({
        outcome,
        responses: parsed.responses,
        malformed: parsed.malformed,
        sentAll,
        ms: performance.now() - started,
      });
    };
    const reparse = () => {
      parsed = parseResponses(Buffer.concat(received), { ended, heads: plan.heads });
      if (parsed.malformed) finish('answered');
      else if (plan.responses > 0 && parsed.responses.length >= plan.responses) finish('answered');
    };
    const armHangTimer = () => {
      clearTimeout(timer);
      const wait = plan.abandonAfterMs ?? hangMs;
      timer = setTimeout(() => finish(plan.abandonAfterMs === undefined ? 'hang' : 'abandoned'), wait);
    };

    socket.on('data', (chunk) => {
      if (kept < MAX_KEPT_BYTES) {
        received.push(chunk);
        kept += chunk.length;
      }
      reparse();
    });
    socket.on('end', () => {
      ended = true;
      reparse();
      finish(parsed.responses.length >= plan.responses ? 'answered' : 'closed');
    });
    socket.on('error', (error) => {
      reparse();
      finish(
        parsed.responses.length >= plan.responses && plan.responses > 0
          ? 'answered'
          : error.code === 'ECONNRESET' || error.code === 'EPIPE'
            ? 'reset'
            : 'closed',
      );
    });
    socket.on('close', () =>
      finish(parsed.responses.length >= plan.responses && plan.responses > 0 ? 'answered' : 'closed'),
    );
    // A host that never accepts or never answers mid-write is a hang too.
    timer = setTimeout(() => finish('hang'), hangMs);
    socket.once('connect', async () => {
      for (const part of plan.parts) {
        if (part.delayMs) await sleep(part.delayMs);
        if (done || socket.destroyed) return;
        if (plan.stopOnAnswer && parsed.responses.length > 0) break;
        if (!socket.write(part.bytes)) await drained(socket);
      }
      if (done || socket.destroyed) return;
      sentAll = true;
      armHangTimer();
    });
  });
}

/** Resolves when the socket can take more, or closes. */
function drained(socket) {
  return new Promise((resolve) => {
    const done = () => {
      socket.off('drain', done);
      socket.off('close', done);
      resolve();
    };
    socket.once('drain', done);
    socket.once('close', done);
  });
}
