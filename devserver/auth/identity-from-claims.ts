import type { Identity } from './identity.js';

/** How verified claims become an `Identity`: the role, tenant and toggle settings of the auth config. */
export interface ClaimMapping {
  /** Roles granted per entry of `claims.groups`; groups not listed grant nothing. */
  groupRoles?: Record<string, string[]>;
  /**
   * Roles granted per `sub`; `*` grants to every caller with verified claims. An anonymous caller
   * has none, so `*` never reaches it: granting a role to everyone signed in must not hand it to
   * requests without a token.
   */
  grants?: Record<string, string[]>;
  /** Claim holding the tenant id (default `tenant_id`). */
  tenantClaim?: string;
  /** Tenant id when the claim is absent (default null). */
  defaultTenantId?: string | null;
  /** `featureToggles` of every caller. */
  featureToggles?: string[];
}

/**
 * The identity of a caller whose token was verified. Pure: no I/O, no clock.
 *
 * @example
 * identityFromClaims({ sub: 'ann', roles: ['editor'], tenant_id: 't1' }, { grants: { '*': ['user'] } })
 * // { claims: {...}, userRoles: ['editor', 'user'], tenantId: 't1', featureToggles: [] }
 */
export function identityFromClaims(claims: Record<string, unknown>, mapping: ClaimMapping = {}): Identity {
  return {
    claims,
    userRoles: mergeRoles(claims, mapping),
    tenantId: tenantFromClaims(claims, mapping),
    featureToggles: mapping.featureToggles ? [...mapping.featureToggles] : [],
  };
}

/**
 * The de-duplicated union, in this order, of `claims.roles`, `claims.realm_access.roles` (Keycloak),
 * `claims.groups` mapped through `groupRoles`, then `grants[sub]` and `grants['*']`.
 *
 * @example
 * mergeRoles({ sub: 'ann', groups: ['/staff'] }, { groupRoles: { '/staff': ['editor'] } }) // ['editor']
 */
export function mergeRoles(
  claims: Record<string, unknown>,
  mapping: Pick<ClaimMapping, 'groupRoles' | 'grants'> = {},
): string[] {
  const roles = new Set<string>(strings(claims.roles));
  const realm = claims.realm_access;
  if (typeof realm === 'object' && realm !== null) addAll(roles, strings((realm as { roles?: unknown }).roles));
  if (mapping.groupRoles) {
    for (const group of strings(claims.groups)) addAll(roles, lookup(mapping.groupRoles, group));
  }
  if (mapping.grants) {
    if (typeof claims.sub === 'string') addAll(roles, lookup(mapping.grants, claims.sub));
    addAll(roles, lookup(mapping.grants, '*'));
  }
  return [...roles];
}

/**
 * `claims[tenantClaim]` when it is a non-empty string, else `defaultTenantId`, else null.
 *
 * @example
 * tenantFromClaims({ org: 'acme' }, { tenantClaim: 'org' }) // 'acme'
 */
export function tenantFromClaims(
  claims: Record<string, unknown>,
  mapping: Pick<ClaimMapping, 'tenantClaim' | 'defaultTenantId'> = {},
): string | null {
  const claim = mapping.tenantClaim ?? 'tenant_id';
  const value = Object.hasOwn(claims, claim) ? claims[claim] : undefined;
  if (typeof value === 'string' && value !== '') return value;
  return mapping.defaultTenantId ?? null;
}

function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string' && v !== '') : [];
}

/** Own entries only: a `sub` of "constructor" must not reach Object.prototype. */
function lookup(table: Record<string, string[]>, key: string): string[] {
  return Object.hasOwn(table, key) ? strings(table[key]) : [];
}

function addAll(set: Set<string>, values: string[]): void {
  for (const value of values) set.add(value);
}
