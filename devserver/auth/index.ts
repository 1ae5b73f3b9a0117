/**
 * Authentication for the host: auth config, JWT verification, claims-to-identity mapping, the
 * cross-site request check and the dev identity cookie.
 *
 * @example
 * import { createIdentify, createCrossSiteCheck, parseAuthConfig } from './auth/index.js'
 */
export { parseAuthConfig, type AuthConfig, type JwtAuthConfig } from './auth-config.js';
export { createIdentify, type IdentifyRequest } from './create-identify.js';
export { checkCrossSite, createCrossSiteCheck, crossSiteGuard, type CrossSiteCheck, type CrossSiteOptions } from './csrf.js';
export { devIdentityCookie } from './dev-identity-cookie.js';
export { identityFromClaims, mergeRoles, tenantFromClaims, type ClaimMapping } from './identity-from-claims.js';
export { createJwtIdentify, identifyFromContext, type IdentifyFromHeaders } from './jwt-identify.js';
export { FORWARDED_TOKEN_HEADER, readToken, type HeaderSource } from './read-token.js';
