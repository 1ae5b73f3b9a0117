import { STATUS_CODES } from 'node:http';
import { Hono, type Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { DEFAULT_BODY_LIMIT, ErrorText, REQUEST_ID_HEADER, type RpcErrorBody } from '../../runtime/protocol.js';
import { registerAdminRoutes } from './admin-route.js';
import { CallLog } from './call-log.js';
import { ANONYMOUS, type Identity } from './context.js';
import type { HostedFeature } from '../feature/hosted-feature.js';
import { registerHealthRoutes } from './health-route.js';
import { registerRpcRoute } from './rpc-route.js';
import { requestIdFrom } from '../common/request-id.js';
import { registerStorageRoutes } from './storage-route.js';
import type { RateLimiter } from '../rate-limit/limiter.js';
import type { CrossSiteOptions } from '../auth/csrf.js';

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
  /** Registers middleware and routes that come before the host's own (static pages, draining). */
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
}

/** Host state the routes share. */
export interface HostState {
  features: Map<string, HostedFeature>;
  calls: CallLog;
  options: Required<Omit<HostOptions, 'logCall' | 'adminToken' | 'before'>> & { adminToken: string | undefined };
}

/** Hono environment of the host's routes. */
export interface HostEnv {
  Variables: {
    requestId: string;
    call: { featureId: string; fnName: string; started: number };
  };
}

/** The host: a Hono app plus the features it serves. */
export interface Host {
  app: Hono<HostEnv>;
  /** Features by id; replace an entry to hot-swap a feature. */
  features: Map<string, HostedFeature>;
  calls: CallLog;
}

/**
 * Creates the host that serves `POST /rpc/{featureId}/{fnName}`, `/_health` and `/_admin`.
 *
 * @example
 * const host = createHost([hostedFeature(manifest, executor)], { dev: true })
 * serve({ fetch: host.app.fetch, port: 3000 })
 */
export function createHost(features: Iterable<HostedFeature>, options: HostOptions = {}): Host {
  const state: HostState = {
    features: new Map([...features].map((f) => [f.id, f])),
    calls: new CallLog({ print: options.logCall ?? null }),
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
  return { app, features: state.features, calls: state.calls };
}

function registerRoutes(app: Hono<HostEnv>, state: HostState): void {
  registerRpcRoute(app, state);
  registerHealthRoutes(app, state);
  registerAdminRoutes(app, state);
  registerStorageRoutes(app, state);
}

/** Turns any error into the contract's JSON body, in one place. */
function handleError(error: unknown, c: Context<HostEnv>, state: HostState): Response {
  const requestId = c.get('requestId') ?? requestIdFrom(c.req.header(REQUEST_ID_HEADER));
  const { status, message, headers } = toFailure(error, state.options.dev);
  const call = c.get('call');
  if (status >= 500 && !(error instanceof HTTPException)) {
    state.options.logError(`Server function ${call ? `${call.featureId}/${call.fnName}` : ''} failed (request ${requestId})`, error);
  }
  if (call) state.calls.record({ featureId: call.featureId, fnName: call.fnName, status, ms: performance.now() - call.started, requestId });
  const body: RpcErrorBody = { error: capMessage(message), requestId };
  return c.json(body, status as 500, { [REQUEST_ID_HEADER]: requestId, ...headers });
}

function toFailure(error: unknown, dev: boolean): { status: number; message: string; headers: Record<string, string> } {
  if (error instanceof HTTPException && isErrorStatus(error.status)) {
    const headers: Record<string, string> = {};
    error.res?.headers.forEach((value, key) => (headers[key] = value));
    return { status: error.status, message: error.message, headers };
  }
  const status = statusOf(error);
  const message = error instanceof Error ? error.message : String(error);
  if (status < 500 || dev) return { status, message: message || `Request failed with status ${status}`, headers: {} };
  return { status, message: ErrorText.internal, headers: {} };
}

/** Largest error message sent to a client, in UTF-8 bytes (SPEC §4); longer ones are cut and say so. */
export const MAX_ERROR_MESSAGE_BYTES = 4096;

/**
 * `statusCode` or `status` of a thrown value when it is a registered HTTP error status (400..599),
 * else 500: a function cannot make the host answer with a status no client knows.
 */
export function statusOf(error: unknown): number {
  if (typeof error === 'object' && error !== null) {
    const { statusCode, status } = error as { statusCode?: unknown; status?: unknown };
    for (const s of [statusCode, status]) if (isErrorStatus(s)) return s;
  }
  return 500;
}

/** True for a registered HTTP status in 400..599. */
export function isErrorStatus(status: unknown): status is number {
  return typeof status === 'number' && Number.isInteger(status) && status >= 400 && status <= 599 && STATUS_CODES[status] !== undefined;
}

/** The message as sent: at most MAX_ERROR_MESSAGE_BYTES, marked where it was cut. */
export function capMessage(message: string): string {
  if (message.length <= MAX_ERROR_MESSAGE_BYTES / 3) return message;
  const bytes = Buffer.from(message);
  if (bytes.length <= MAX_ERROR_MESSAGE_BYTES) return message;
  const marker = ` … (cut: the message had ${bytes.length} bytes)`;
  // A cut inside a multi-byte character decodes to U+FFFD: drop it.
  const kept = bytes.subarray(0, MAX_ERROR_MESSAGE_BYTES - Buffer.byteLength(marker)).toString('utf8').replace(/\uFFFD+$/, '');
  return kept + marker;
}
