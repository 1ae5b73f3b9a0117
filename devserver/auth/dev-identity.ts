import type { Context } from 'hono';
import { getCookie } from 'hono/cookie';
import { RequestError } from '../../runtime/request-error.js';
import { ANONYMOUS, type Identity } from './identity.js';

/** Header (or cookie) carrying the claims of the dev identity, as JSON. */
export const DEV_IDENTITY_HEADER = 'x-favn-dev-identity';
export const DEV_IDENTITY_COOKIE = 'favn_dev_identity';

/**
 * Auth mode `none` in dev: anonymous, unless the request picks a dev identity by sending its
 * claims (`{"sub": "alice", "roles": ["admin"]}`) in a header or cookie. Malformed claims are 401.
 *
 * @example
 * fetch('/rpc/feature-x/whoAmI', { headers: { 'x-favn-dev-identity': '{"sub":"alice"}' }, ... })
 */
export function devIdentity(c: Context): Identity {
  const raw = c.req.header(DEV_IDENTITY_HEADER) ?? getCookie(c, DEV_IDENTITY_COOKIE);
  if (!raw) return ANONYMOUS;
  let claims: unknown;
  try {
    claims = JSON.parse(raw);
  } catch {
    claims = null;
  }
  if (typeof claims !== 'object' || claims === null || Array.isArray(claims)) {
    throw RequestError.of('unauthorized', 'the dev identity must be a JSON object of claims, like {"sub":"alice"}');
  }
  const record = claims as Record<string, unknown>;
  const roles = Array.isArray(record.roles) ? record.roles.filter((r): r is string => typeof r === 'string') : [];
  return {
    claims: record,
    userRoles: [...new Set(roles)],
    tenantId: typeof record.tenant_id === 'string' ? record.tenant_id : null,
    featureToggles: [],
  };
}
