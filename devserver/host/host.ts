import { Hono } from 'hono';
import { DEFAULT_BODY_LIMIT } from '../../runtime/protocol.js';
import { registerAdminRoutes } from './admin-route.js';
import { CallLog } from './call-log.js';
import { ANONYMOUS } from '../auth/identity.js';
import type { HostedFeature } from '../feature/hosted-feature.js';
import { handleError } from './handle-error.js';
import { registerHealthRoutes } from './health-route.js';
import { registerRpcRoute } from './rpc-route.js';
import { registerStorageRoutes } from './storage-route.js';
import { registerLiveRoutes } from './live-route.js';
import { LiveHub } from '../live/live-hub.js';

import type { HostEnv, HostOptions, HostState } from './host-state.js';

export type { HostEnv, HostOptions, HostState };

/** The host: a Hono app plus the features it serves. */
export interface Host {
  app: Hono<HostEnv>;
  /** Features by id; replace an entry to hot-swap a feature. */
  features: Map<string, HostedFeature>;
  calls: CallLog;
  /** Live queries: `live.changed(...)` re-runs what a write from outside a call touched. */
  live: LiveHub;
}

/**
 * Creates the host that serves `POST /rpc/{featureId}/{fnName}`, `/_health` and `/_admin`.
 *
 * @example
 * const host = createHost([runtime.feature], { dev: true }) // runtime: a loaded FeatureRuntime
 * serve({ fetch: host.app.fetch, port: 3000 })
 */
export function createHost(features: Iterable<HostedFeature>, options: HostOptions = {}): Host {
  const state: HostState = {
    features: new Map([...features].map((f) => [f.id, f])),
    calls: new CallLog({ print: options.logCall ?? null }),
    live: new LiveHub(options.live),
    options: {
      dev: options.dev ?? false,
      bodyLimit: options.bodyLimit ?? DEFAULT_BODY_LIMIT,
      logError: options.logError ?? ((message, error) => console.error(message, error)),
      identify: options.identify ?? (() => ANONYMOUS),
      adminToken: options.adminToken,
      rateLimiter: options.rateLimiter ?? null,
      crossSite: options.crossSite ?? {},
      defaultRateLimits: options.defaultRateLimits ?? false,
    },
  };
  const app = new Hono<HostEnv>();
  options.before?.(app);
  registerRoutes(app, state);
  app.onError((error, c) => handleError(error, c, state));
  return { app, features: state.features, calls: state.calls, live: state.live };
}

function registerRoutes(app: Hono<HostEnv>, state: HostState): void {
  registerRpcRoute(app, state);
  registerHealthRoutes(app, state);
  registerAdminRoutes(app, state);
  registerStorageRoutes(app, state);
  registerLiveRoutes(app, state);
}
