import { errors } from 'jose';
import { RequestError } from '../../runtime/request-error.js';

/** Failures that are the token's fault, with the reason the client is told. */
const TOKEN_FAULTS: Readonly<Record<string, string>> = {
  [errors.JWTExpired.code]: 'token expired',
  [errors.JOSEAlgNotAllowed.code]: 'token signing algorithm not allowed',
  [errors.JOSENotSupported.code]: 'token signing algorithm not supported',
  [errors.JWSSignatureVerificationFailed.code]: 'token signature invalid',
  [errors.JWKSNoMatchingKey.code]: 'no signing key matches the token',
  [errors.JWSInvalid.code]: 'token malformed',
  [errors.JWTInvalid.code]: 'token malformed',
  [errors.JWEInvalid.code]: 'token malformed',
};

/** Failures of fetching or reading the remote key set: the server's problem, not the token's. */
const KEY_SET_FAULTS = new Set<string>([errors.JWKSTimeout.code, errors.JWKSInvalid.code, errors.JOSEError.code]);

/**
 * The HTTP error for a failed verification. The token's fault is 401 `Unauthorized: <reason>`;
 * an unreachable or broken JWKS endpoint is 503. Messages never contain the token. Anything
 * unexpected is returned unchanged, to surface as a 500.
 *
 * @example
 * try { await jwtVerify(token, key, options) } catch (error) { throw toAuthError(error, false) }
 */
export function toAuthError(error: unknown, remoteKeys: boolean): unknown {
  if (!(error instanceof errors.JOSEError)) {
    // Without a JOSE code, a remote key set failed at the network level (fetch rejected).
    return remoteKeys ? keySetUnavailable(error) : error;
  }
  if (error instanceof errors.JWTClaimValidationFailed)
    return unauthorized(claimReason(error.claim, error.reason), error);
  const reason = TOKEN_FAULTS[error.code];
  if (reason) return unauthorized(reason, error);
  if (remoteKeys && KEY_SET_FAULTS.has(error.code)) return keySetUnavailable(error);
  return unauthorized('token invalid', error);
}

function claimReason(claim: string, reason: string): string {
  if (reason === 'missing') return `token has no "${claim}" claim`;
  if (claim === 'nbf') return 'token not yet valid';
  if (claim === 'iss') return 'token issuer not accepted';
  if (claim === 'aud') return 'token audience not accepted';
  return `token claim "${claim}" invalid`;
}

function unauthorized(reason: string, cause: unknown): RequestError {
  return RequestError.of('unauthorized', reason, undefined, { cause });
}

function keySetUnavailable(cause: unknown): RequestError {
  const detail = 'the signing keys (JWKS) could not be fetched, so no token can be verified';
  return RequestError.of('unavailable', detail, undefined, { cause });
}
