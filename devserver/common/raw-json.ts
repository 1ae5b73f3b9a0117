/**
 * A result that is already JSON text (e.g. copied out of an isolate as a string): the RPC route
 * sends it as it is instead of parsing and serializing it again.
 */
export class RawJson {
  /** `status` other than 200: an upstream's error answer, passed through as it is. */
  constructor(
    readonly json: string,
    readonly status = 200,
  ) {}
}
