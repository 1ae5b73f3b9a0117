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
  /** A feature served from signed releases: the release in use and a refused newer one. */
  release?: ReleaseHealth;
}

/** The release state of a feature that `favn serve` loads from a signed `releases.json`. */
export interface ReleaseHealth {
  location: string;
  /** The version serving, `null` before any release was accepted. */
  version: string | null;
  /** `seq` of the signed index accepted last. */
  seq: number | null;
  /** When `releases.json` was last read. */
  checkedAt: string | null;
  /** Why the index or release read last was refused (the previous release keeps serving), else `null`. */
  refused: string | null;
}

/** A hosted feature that may carry its release state (`favn serve` sets it on released features). */
export interface ReleasedFeature extends HostedFeature {
  release?: () => ReleaseHealth;
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
export function featureHealth(feature: ReleasedFeature): FeatureHealth {
  const status = feature.functions?.status();
  const release = feature.release?.();
  return {
    featureId: feature.id,
    version: feature.manifest.version ?? null,
    mode: feature.functions?.mode ?? 'none',
    exports: status?.exports ?? [],
    declared: [...feature.declared],
    loadedAt: status?.loadedAt ?? null,
    error: feature.unavailableReason ?? feature.loadError?.() ?? joinErrors(status?.error, feature.handlersError?.()),
    ...(release ? { release } : {}),
  };
}

function joinErrors(...errors: (string | null | undefined)[]): string | null {
  const present = errors.filter((e): e is string => Boolean(e));
  return present.length ? present.join('\n') : null;
}
