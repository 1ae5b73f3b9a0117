import type { errors as JoseErrors } from 'jose';
import { RequestError } from '../../runtime/request-error.js';

/** Failures that are the token's fault (by jose's error code), with the reason the client is told. */
const TOKEN_FAULTS: Readonly<Record<string, string>> = {
  ERR_JWT_EXPIRED: 'token expired',
  ERR_JOSE_ALG_NOT_ALLOWED: 'token signing algorithm not allowed',
  ERR_JOSE_NOT_SUPPORTED: 'token signing algorithm not supported',
  ERR_JWS_SIGNATURE_VERIFICATION_FAILED: 'token signature invalid',
  ERR_JWKS_NO_MATCHING_KEY: 'no signing key matches the token',
  ERR_JWS_INVALID: 'token malformed',
  ERR_JWT_INVALID: 'token malformed',
  ERR_JWE_INVALID: 'token malformed',
};

/** Failures of fetching or reading the remote key set: the server's problem, not the token's. */
const KEY_SET_FAULTS = new Set<string>(['ERR_JWKS_TIMEOUT', 'ERR_JWKS_INVALID', 'ERR_JOSE_GENERIC']);

/**
 * The HTTP error for a failed verification. The token's fault is 401 `Unauthorized: <reason>`;
 * an unreachable or broken JWKS endpoint is 503. Messages never contain the token. Anything
 * unexpected is returned unchanged, to surface as a 500.
 *
 * @example
 * try { await jwtVerify(token, key, options) } catch (error) { throw toAuthError(error, false, jose.errors) }
 */
export function toAuthError(error: unknown, remoteKeys: boolean, errors: typeof JoseErrors): unknown {
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
