import type { Context, Hono } from 'hono';
import type { CrossSiteOptions } from '../auth/csrf.js';
import type { Identity } from '../auth/identity.js';
import type { HostedFeature } from '../feature/hosted-feature.js';
import type { RateLimiter } from '../rate-limit/limiter.js';
import type { CallLog } from './call-log.js';
import type { LiveHub, LiveLimits } from '../live/live-hub.js';

// The host's options and the state its routes share, apart from `createHost` so that the routes
// and the host that registers them do not import each other.

export interface HostOptions {
  /** Dev mode: 5xx messages reach the client, `/_admin` is open. Default false. */
  dev?: boolean;
  /** Largest request body in bytes (default 1 MiB). */
  bodyLimit?: number;
  /** Receives one colored line per call; `null` prints nothing. */
  logCall?: ((line: string) => void) | null;
  /** Receives errors worth a stack trace in the terminal (5xx). */
  logError?: (message: string, error: unknown) => void;
  /** Establishes who is calling. Default: anonymous. */
  identify?: (c: Context<HostEnv>, feature: HostedFeature) => Identity | Promise<Identity>;
  /** Token that opens `/_admin` outside dev (`Authorization: Bearer <token>`). */
  adminToken?: string;
  /**
   * Registers middleware and routes that come before the host's own (static pages, draining).
   * What they throw is answered by the host's error handler, like the host's own routes' errors.
   */
  before?: (app: Hono<HostEnv>) => void;
  /** Which cross-site browser POSTs/PUTs are allowed (CSRF); by default only same-origin ones. */
  crossSite?: CrossSiteOptions;
  /** Counts calls against rate limits; `null` (default): no limits. */
  rateLimiter?: RateLimiter | null;
  /**
   * Apply the default limits to features whose manifest sets none (the platform host). When
   * false (dev), only features that set `rateLimits` are limited. Default false.
   */
  defaultRateLimits?: boolean;
  /** Limits of live queries (connections, subscriptions, re-runs at once). */
  live?: LiveLimits;
}

/** Host state the routes share. */
export interface HostState {
  features: Map<string, HostedFeature>;
  calls: CallLog;
  /** Live queries: push connections, subscriptions and their re-runs. */
  live: LiveHub;
  options: Required<Omit<HostOptions, 'logCall' | 'adminToken' | 'before' | 'live'>> & {
    adminToken: string | undefined;
  };
}

/** Hono environment of the host's routes. */
export interface HostEnv {
  Variables: {
    requestId: string;
    call: { featureId: string; fnName: string; started: number };
  };
}
