/**
 * The one error a server-function proxy throws. `status` is the HTTP status of the failed call, or
 * `0` when the request never got a response (network failure, aborted): check `isNetworkError`.
 *
 * @example
 * try { await saveData(id, payload) } catch (e) {
 *   if (e instanceof RpcError && e.status === 403) showForbidden()
 * }
 */
export class RpcError extends Error {
  override readonly name = 'RpcError';
  /** HTTP status, `0` for a network failure. */
  readonly status: number;
  /** The host's request id for this call, `null` when no response arrived. */
  readonly requestId: string | null;

  constructor(status: number, message: string, requestId: string | null, options?: { cause?: unknown }) {
    super(message, options);
    this.status = status;
    this.requestId = requestId;
  }

  /** True when the call never reached the host or its response was lost. */
  get isNetworkError(): boolean {
    return this.status === 0;
  }
}
