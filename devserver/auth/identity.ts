/** Who is calling, as the auth layer established it. */
export interface Identity {
  claims: Record<string, unknown> | null;
  userRoles: string[];
  tenantId: string | null;
  featureToggles: string[];
}

/** The caller when no credentials were presented. */
export const ANONYMOUS: Identity = Object.freeze({ claims: null, userRoles: [], tenantId: null, featureToggles: [] });
