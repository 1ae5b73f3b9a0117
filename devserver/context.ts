import type { FeatureDb, ServerContext } from '../runtime/server.js';
import type { HostedFeature } from './feature.js';

/** Who is calling, as the auth layer established it. */
export interface Identity {
  claims: Record<string, unknown> | null;
  userRoles: string[];
  tenantId: string | null;
  featureToggles: string[];
}

/** The caller when no credentials were presented. */
export const ANONYMOUS: Identity = Object.freeze({ claims: null, userRoles: [], tenantId: null, featureToggles: [] });

/**
 * Builds the `ServerContext` a server function receives as its first argument.
 *
 * @example
 * buildServerContext(feature, requestId, ANONYMOUS, controller.signal)
 */
export function buildServerContext(feature: HostedFeature, requestId: string, identity: Identity, signal: AbortSignal): ServerContext {
  const sub = identity.claims?.sub;
  const ctx: ServerContext = {
    requestId,
    featureId: feature.id,
    userRoles: [...identity.userRoles],
    claims: identity.claims,
    visibility: { featureToggles: [...identity.featureToggles], tenantId: identity.tenantId },
    auth: { userId: typeof sub === 'string' ? sub : null },
    secrets: feature.secrets,
    signal,
    // Made on first use: most calls never touch the database.
    get db() {
      const db = feature.data ? feature.data.db(ctx) : noDatabase(feature.id);
      Object.defineProperty(ctx, 'db', { value: db, enumerable: true });
      return db;
    },
  };
  return ctx;
}

function noDatabase(featureId: string): FeatureDb {
  const fail = () => Promise.reject(new Error(`ctx.db: feature "${featureId}" has no server/schema.ts, so it has no tables. Define them with defineSchema().`));
  return { get: fail, query: fail, insert: fail, patch: fail, delete: fail, transaction: fail };
}
