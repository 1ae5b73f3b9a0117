import { STATUS_CODES } from 'node:http';

/**
 * True for a registered HTTP status in 400..599.
 *
 * @example
 * isErrorStatus(429) // true
 * isErrorStatus(450) // false
 */
export function isErrorStatus(status: unknown): status is number {
  return (
    typeof status === 'number' &&
    Number.isInteger(status) &&
    status >= 400 &&
    status <= 599 &&
    STATUS_CODES[status] !== undefined
  );
}

/**
 * True for a registered HTTP status a successful or failed answer may carry: 200..299 or 400..599
 * (redirects and 1xx are not answers to a call).
 *
 * @example
 * isAnswerStatus(201) // true
 * isAnswerStatus(302) // false
 */
export function isAnswerStatus(status: unknown): status is number {
  return (
    isErrorStatus(status) ||
    (typeof status === 'number' && status >= 200 && status <= 299 && STATUS_CODES[status] !== undefined)
  );
}
