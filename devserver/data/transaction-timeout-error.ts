import { contractText, CONTRACT_ERRORS } from '../../runtime/protocol.js';
import { RequestError } from '../../runtime/request-error.js';

/** A feature transaction held its database longer than its budget, and was rolled back. */
export class TransactionTimeoutError extends RequestError {
  readonly timeoutMs: number;

  constructor(timeoutMs: number, hint = '') {
    super(
      CONTRACT_ERRORS.timedOut.status,
      `${contractText('timedOut')}: the database transaction was held over ${timeoutMs} ms and was rolled back, ` +
        `so nothing it wrote was committed. Keep slow work (fetch, timers) out of ctx.db.transaction, ` +
        `or raise "db.transactionTimeoutMs" in feature.json.${hint}`,
    );
    this.name = 'TransactionTimeoutError';
    this.timeoutMs = timeoutMs;
  }
}
