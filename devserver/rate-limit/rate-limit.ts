import { RequestError } from '../../runtime/request-error.js';
import type { RateDecision, RateLimiter } from './limiter.js';
import type { FunctionKind } from '../../runtime/kinds.js';
import type { RateLimits } from './limits.js';

/** One call to check: whose budget (installation and kind) and the feature's limits. */
export interface RateLimitCheck {
  featureId: string;
  /** The caller's tenant; `null` (no tenant) is one installation of its own. */
  tenantId: string | null;
  kind: FunctionKind;
  limits: RateLimits;
}

/**
 * Takes one call from the budget of an installation (featureId + tenantId) for one kind of
 * function. Over the limit it throws a 429 `RequestError` whose message starts with the
 * contract's `Rate limit exceeded` and whose headers carry `Retry-After`; the host's error
 * handler sends that header with the JSON error response. Returns a promise only when the
 * limiter does (PostgreSQL), so the in-memory path stays synchronous.
 *
 * @example
 * const checked = checkRateLimit(limiter, { featureId, tenantId: identity.tenantId, kind, limits })
 * if (checked) await checked
 */
export function checkRateLimit(limiter: RateLimiter, check: RateLimitCheck, now?: number): void | Promise<void> {
  const { limit, windowMs } = check.limits[check.kind];
  const decision = limiter.take(rateLimitKey(check.featureId, check.tenantId, check.kind), limit, windowMs, now);
  if (decision instanceof Promise) return decision.then((d) => enforce(d, check.kind, limit, windowMs));
  enforce(decision, check.kind, limit, windowMs);
}

/**
 * The limiter key of one budget. A featureId and a kind never contain `:`, so the tenant comes
 * last and may contain anything; without a tenant the key has no third part.
 *
 * @example
 * rateLimitKey('feature-x', 'acme', 'query') // 'feature-x:query:acme'
 */
export function rateLimitKey(featureId: string, tenantId: string | null, kind: FunctionKind): string {
  return tenantId === null ? `${featureId}:${kind}` : `${featureId}:${kind}:${tenantId}`;
}

function enforce(decision: RateDecision, kind: FunctionKind, limit: number, windowMs: number): void {
  if (decision.allowed) return;
  const retryAfter = String(decision.retryAfterSec);
  const budget = `at most ${limit} ${kindLabel(kind)} calls per ${windowMs / 1000} s for this installation`;
  throw RequestError.of('rateLimited', `${budget}; retry in ${retryAfter} s`, undefined, {
    headers: { 'Retry-After': retryAfter },
  });
}

function kindLabel(kind: FunctionKind): string {
  if (kind === 'plain') return 'plain function';
  if (kind === 'query' || kind === 'mutation' || kind === 'action') return `${kind}()`;
  return kind;
}
