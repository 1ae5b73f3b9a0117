import type { Context } from 'hono';
import { RequestError } from '../../runtime/request-error.js';
import { ANONYMOUS, type Identity } from './identity.js';
import { UsageError } from '../common/usage-error.js';
import { parseAuthConfig, type JwtAuthConfig } from './auth-config.js';
import { identityFromClaims, type ClaimMapping } from './identity-from-claims.js';
import { FORWARDED_TOKEN_HEADER, readToken, type HeaderSource } from './read-token.js';
import { createTokenVerifier } from './verify-token.js';

/** Establishes who is calling from the request headers alone. */
export type IdentifyFromHeaders = (headers: HeaderSource) => Promise<Identity>;

/**
 * Auth mode `jwt`: the token from `Authorization: Bearer`, `x-auth-request-access-token` or the
 * configured cookie is verified and mapped to an `Identity`. An invalid token is 401 whether or
 * not auth is required; a missing one is anonymous, or 401 when `required`. The config is checked
 * with `parseAuthConfig`, so one built in code gets the same checks as one read from a file.
 *
 * @example
 * const identify = createJwtIdentify({ mode: 'jwt', jwksUrl: 'https://id.example.com/certs', audience: 'app' })
 * const identity = await identify(request.headers)
 */
export function createJwtIdentify(config: JwtAuthConfig): IdentifyFromHeaders {
  const parsed = parseAuthConfig(config);
  if (parsed.mode !== 'jwt') throw new UsageError(`createJwtIdentify needs auth.mode "jwt" (got "${parsed.mode}")`);
  const verify = createTokenVerifier(parsed);
  const mapping = claimMapping(parsed);
  const required = parsed.required ?? false;
  const cookie = parsed.cookie;
  // Host-wide feature toggles apply to anonymous callers too; roles do not, not even grants["*"],
  // which means everyone signed in.
  const anonymous: Identity = parsed.featureToggles?.length
    ? Object.freeze({ ...ANONYMOUS, featureToggles: [...parsed.featureToggles] })
    : ANONYMOUS;
  return async function jwtIdentify(headers) {
    const token = readToken(headers, cookie);
    if (token === null) {
      if (required) throw RequestError.of('unauthorized', missingTokenHint(cookie));
      return anonymous;
    }
    const claims = await verify(token);
    return identityFromClaims(claims, mapping);
  };
}

/**
 * Adapts a headers-based identify to a Hono handler's `Context`, the shape of the host's
 * `identify` option.
 *
 * @example
 * createHost(features, { identify: identifyFromContext(createJwtIdentify(config)) })
 */
export function identifyFromContext(identify: IdentifyFromHeaders): (c: Context) => Promise<Identity> {
  return function identifyRequest(c) {
    return identify(c.req.raw.headers);
  };
}

function claimMapping(config: JwtAuthConfig): ClaimMapping {
  const mapping: ClaimMapping = {};
  if (config.groupRoles) mapping.groupRoles = config.groupRoles;
  if (config.grants) mapping.grants = config.grants;
  if (config.tenantClaim !== undefined) mapping.tenantClaim = config.tenantClaim;
  if (config.defaultTenantId !== undefined) mapping.defaultTenantId = config.defaultTenantId;
  if (config.featureToggles) mapping.featureToggles = config.featureToggles;
  return mapping;
}

function missingTokenHint(cookie: string | undefined): string {
  const places = ['"Authorization: Bearer <token>"', `the ${FORWARDED_TOKEN_HEADER} header`];
  if (cookie) places.push(`the ${cookie} cookie`);
  return `no token; send one in ${places.join(', ').replace(/, ([^,]*)$/, ' or $1')}`;
}
