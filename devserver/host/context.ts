import type { FeatureDb, ServerContext } from '../../runtime/server.js';
import type { Identity } from '../auth/identity.js';
import type { HostedFeature } from '../feature/hosted-feature.js';

/**
 * Builds the `ServerContext` a server function receives as its first argument.
 *
 * @example
 * buildServerContext(feature, requestId, ANONYMOUS, controller.signal)
 */
export function buildServerContext(
  feature: HostedFeature,
  requestId: string,
  identity: Identity,
  abort: CallAbort | AbortSignal,
): ServerContext {
  const sub = identity.claims?.sub;
  const ctx: ServerContext = {
    requestId,
    featureId: feature.id,
    userRoles: [...identity.userRoles],
    claims: identity.claims,
    visibility: { featureToggles: [...identity.featureToggles], tenantId: identity.tenantId },
    auth: { userId: typeof sub === 'string' ? sub : null },
    secrets: feature.secrets,
    get signal() {
      const signal = abort instanceof CallAbort ? abort.signal : abort;
      Object.defineProperty(ctx, 'signal', { value: signal, enumerable: true });
      return signal;
    },
    // Made on first use: most calls never touch the database.
    get db() {
      const db = feature.data ? feature.data.db(ctx) : noDatabase(feature.id);
      Object.defineProperty(ctx, 'db', { value: db, enumerable: true });
      return db;
    },
  };
  return ctx;
}

/**
 * The abort of one call, with its `AbortSignal` made only if the function reads `ctx.signal`:
 * most never do, and an AbortController per call is a measurable cost on the hot path.
 */
export class CallAbort {
  #controller: AbortController | null = null;
  #reason: unknown = undefined;
  #aborted = false;

  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.#aborted) this.#controller.abort(this.#reason);
    }
    return this.#controller.signal;
  }

  abort(reason: unknown): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason;
    this.#controller?.abort(reason);
  }
}

function noDatabase(featureId: string): FeatureDb {
  const fail = () =>
    Promise.reject(
      new Error(
        `ctx.db: feature "${featureId}" has no server/schema.ts, so it has no tables. Define them with defineSchema().`,
      ),
    );
  return { get: fail, query: fail, insert: fail, patch: fail, delete: fail, transaction: fail };
}
