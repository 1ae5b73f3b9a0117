import { contractText, CONTRACT_ERRORS, type ContractErrorName } from './protocol.js';

/** Marks a `RequestError` across copies of this module (a server bundle carries its own copy). */
const BRAND = Symbol.for('favn.RequestError');

/**
 * The one error that fails a request with a status: thrown anywhere on the host (the SQL compiler,
 * an executor, the rate limiter, auth) and turned into the contract's `{error, requestId}` JSON in
 * one place, the host's error handler. Web APIs only, so the shipped runtime and pure cores can
 * throw it. Server functions may throw it too, to answer with a 4xx status of their choice.
 *
 * @example
 * throw RequestError.of('unavailable', 'the handler bundle could not be built')
 * throw new RequestError(409, 'This note was changed by someone else')
 */
export class RequestError extends Error {
  override name = 'RequestError';
  /** The HTTP status of the answer. */
  readonly status: number;
  /** Extra response headers (e.g. `Retry-After` of a 429). */
  readonly headers: Readonly<Record<string, string>>;

  constructor(status: number, message: string, options: { headers?: Record<string, string>; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.status = status;
    this.headers = Object.freeze({ ...options.headers });
    Object.defineProperty(this, BRAND, { value: true });
  }

  /**
   * True for a `RequestError` of any copy of this module: a feature's server bundle includes its
   * own copy, so `instanceof` alone would miss the errors its functions throw.
   *
   * @example
   * if (RequestError.is(error)) response.headers = error.headers
   */
  static is(value: unknown): value is RequestError {
    return (
      value instanceof RequestError || (value instanceof Error && (value as { [BRAND]?: unknown })[BRAND] === true)
    );
  }

  /**
   * The error of a contract row, with `detail` after its text and `{name}` filled with `name`.
   *
   * @example
   * RequestError.of('malformed', 'body is not valid JSON') // 400 'Malformed RPC request: body is not valid JSON'
   * RequestError.of('notDeclared', undefined, 'getData')   // 403 'Function "getData" is not declared ...'
   */
  static of(
    row: ContractErrorName,
    detail?: string,
    name?: string,
    options?: { headers?: Record<string, string>; cause?: unknown },
  ): RequestError {
    const text = contractText(row, name);
    return new RequestError(CONTRACT_ERRORS[row].status, detail ? `${text}: ${detail}` : text, options);
  }
}
