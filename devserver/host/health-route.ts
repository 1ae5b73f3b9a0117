import type { Hono } from 'hono';
import { RequestError } from '../../runtime/request-error.js';
import type { HostedFeature } from '../feature/hosted-feature.js';
import type { HostEnv, HostState } from './host-state.js';

/** What `GET /_health/{featureId}` returns. */
export interface FeatureHealth {
  featureId: string;
  version: string | null;
  mode: 'module' | 'endpoint' | 'none';
  exports: string[];
  declared: string[];
  loadedAt: string | null;
  error: string | null;
}

/**
 * Mounts `GET /_health` (every feature) and `GET /_health/{featureId}` (200, or 404 if absent).
 */
export function registerHealthRoutes(app: Hono<HostEnv>, state: HostState): void {
  app.get('/_health', (c) => c.json({ features: [...state.features.values()].map(featureHealth) }));
  app.get('/_health/:featureId', (c) => {
    const feature = state.features.get(c.req.param('featureId'));
    if (!feature) throw RequestError.of('featureNotFound', undefined, c.req.param('featureId'));
    return c.json(featureHealth(feature));
  });
}

/** Health of one feature, also used by `/_admin`. */
export function featureHealth(feature: HostedFeature): FeatureHealth {
  const status = feature.functions?.status();
  return {
    featureId: feature.id,
    version: feature.manifest.version ?? null,
    mode: feature.functions?.mode ?? 'none',
    exports: status?.exports ?? [],
    declared: [...feature.declared],
    loadedAt: status?.loadedAt ?? null,
    error: feature.unavailableReason ?? joinErrors(status?.error, feature.handlersError?.()),
  };
}

function joinErrors(...errors: (string | null | undefined)[]): string | null {
  const present = errors.filter((e): e is string => Boolean(e));
  return present.length ? present.join('\n') : null;
}
