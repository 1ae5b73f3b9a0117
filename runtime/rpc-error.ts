/**
 * The one error a server-function proxy throws. `status` is the HTTP status of the failed call;
 * `0` when the request never got a response (network failure, aborted): check `isNetworkError`;
 * `400` with `isUsageError` when the browser did not send it because of how the code made it (the
 * message says what to change).
 *
 * @example
 * try { await saveData(id, payload) } catch (e) {
 *   if (e instanceof RpcError && e.status === 403) showForbidden()
 * }
 */
export class RpcError extends Error {
  override readonly name = 'RpcError';
  /** HTTP status, `0` for a network failure, `400` for a call the browser refused to send. */
  readonly status: number;
  /** The host's request id for this call, `null` when no response arrived. */
  readonly requestId: string | null;
  /** True when the call was never sent because of how the code made it; the message says the fix. */
  readonly isUsageError: boolean;

  constructor(
    status: number,
    message: string,
    requestId: string | null,
    options?: { cause?: unknown; usage?: boolean },
  ) {
    super(message, options);
    this.status = status;
    this.requestId = requestId;
    this.isUsageError = options?.usage ?? false;
  }

  /** True when the call never reached the host or its response was lost. */
  get isNetworkError(): boolean {
    return this.status === 0;
  }
}
