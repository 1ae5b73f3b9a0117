import { serve, type ServerType } from '@hono/node-server';
import { serveStatic } from '@hono/node-server/serve-static';
import type { Server } from 'node:http';
import path from 'node:path';
import type { SqlClient } from '../data/sql-client.js';
import { openDatabase } from '../data/open-database.js';
import { createHost, type HostOptions } from '../host/host.js';
import type { HostedFeature } from '../feature/hosted-feature.js';
import { loadFeatures, type ServedFeature } from './load-features.js';
import { openRateLimiter } from '../rate-limit/open-rate-limiter.js';
import { createIdentify } from '../auth/create-identify.js';
import type { ServeConfig } from './serve-config.js';
import { createDrain } from './drain.js';
import { listenForChanges } from '../live/postgres-changes.js';
import { attachLiveSockets } from '../host/live-socket.js';
import { readFeatureSecrets } from './feature-secrets.js';
import { createHostCheck } from './host-check.js';
import { UsageError } from '../common/usage-error.js';
import { registerShellRoutes } from './shell-route.js';
import { loadBuiltFeature } from '../feature/load-built-feature.js';
import { ReleaseWatcher } from './release-watcher.js';
import { DEFAULT_RELEASE_POLL_SECONDS } from './serve-config.js';

export interface ServeOptions extends Pick<HostOptions, 'identify' | 'logCall' | 'logError' | 'dev' | 'rateLimiter'> {
  port: number;
  host: string;
  /** Fail instead of trying the next port when `port` is taken (like Vite's `--strictPort`). */
  strictPort?: boolean;
  /** Where PGlite keeps data when there is no DATABASE_URL, and where releases are cached. */
  root?: string;
  env?: Record<string, string | undefined>;
  warn?: (message: string) => void;
  /** Told of release switches. */
  info?: (message: string) => void;
}

export interface RunningHost {
  url: string;
  features: ServedFeature[];
  /**
   * Graceful shutdown: no new calls (503, `connection: close`), calls in flight finish (up to
   * `graceMs`), then the socket, isolates and database close.
   */
  close(graceMs?: number): Promise<void>;
}

/**
 * The standalone host (`favn serve`): many built features on `@hono/node-server`, each client at
 * `/{featureId}/` and its functions at `/rpc/{featureId}/...`, with `/_health` and `/_admin`.
 *
 * @example
 * const running = await startServe(readServeConfig(undefined, ['feature-a']), { port: 3000, host: 'localhost' })
 */
export async function startServe(config: ServeConfig, options: ServeOptions): Promise<RunningHost> {
  const root = options.root ?? process.cwd();
  const env = options.env ?? process.env;
  const warn = options.warn ?? ((m: string) => console.warn(m));
  // Read before anything opens: a missing secrets file stops the start with a usage error.
  const secrets = readFeatureSecrets(config.secrets ?? {}, env, warn);
  let database: Promise<SqlClient> | null = null;
  const openShared = () => (database ??= openDatabase(root, env));
  const cacheDir = config.cacheDir ?? path.join(root, '.favn', 'releases');
  const watchers: ReleaseWatcher[] = [];
  // Their watchers free them (and the releases they switched to).
  const released = new Set<HostedFeature>();
  const features: ServedFeature[] = [];
  // Every release source starts at once: a slow CDN delays the start by its own wait only.
  const starting = config.features.map((source) => {
    if (source.kind !== 'releases') return null;
    const watcher = new ReleaseWatcher(source, {
      cacheDir,
      pollMs: (config.releasePollSeconds ?? DEFAULT_RELEASE_POLL_SECONDS) * 1000,
      // A release that is switched away from closes its runtime: the shared database stays open.
      load: (dir, featureId) =>
        loadBuiltFeature(dir, {
          database: async () => borrowed(await openShared()),
          secrets: secrets.of(featureId),
          warn,
        }),
      warn,
      info: options.info ?? ((m: string) => console.log(m)),
    });
    watchers.push(watcher);
    return watcher.start();
  });
  try {
    for (const [i, source] of config.features.entries()) {
      let one: ServedFeature;
      const release = starting[i];
      if (release) {
        one = { feature: await release, staticDir: null };
        released.add(one.feature);
      } else {
        [one] = (await loadFeatures([source], {
          // Borrowed: closing the feature leaves the shared pool to `close()` below, which ends it once.
          database: async () => borrowed(await openShared()),
          cacheDir,
          secrets: (featureId) => secrets.of(featureId),
          warn,
          lazy: config.load !== 'start',
        })) as [ServedFeature];
      }
      if (features.some((s) => s.feature.id === one.feature.id)) {
        throw new UsageError(`Feature "${one.feature.id}" is listed twice`);
      }
      features.push(one);
    }
  } catch (error) {
    // A start that fails frees the releases already loaded.
    await Promise.allSettled(starting);
    for (const watcher of watchers) watcher.close();
    throw error;
  }
  for (const source of secrets.unused(features.map((f) => f.feature.id))) {
    warn(`favn serve: ${source} names no served feature`);
  }
  const hostCheck = createHostCheck({
    allowedHosts: config.allowedHosts,
    listenHost: options.host,
    publicHost: config.crossSite.host,
  });
  const rateLimiter = options.rateLimiter === undefined ? openRateLimiter(env) : options.rateLimiter;
  const drain = createDrain();
  const host = createHost(
    features.map((f) => f.feature),
    {
      dev: options.dev ?? false,
      identify: options.identify ?? createIdentify(config.auth, { dev: options.dev ?? false }),
      crossSite: config.crossSite,
      logCall: options.logCall,
      logError: options.logError,
      adminToken: config.adminToken ?? env.FAVN_ADMIN_TOKEN,
      rateLimiter,
      defaultRateLimits: true,
      before(app) {
        // First: a request for a host name that is not this server's (DNS rebinding) sees nothing.
        app.use('*', hostCheck);
        app.use('*', drain.middleware);
        for (const { feature, staticDir } of features) {
          if (staticDir) mountClient(app, feature.id, staticDir);
        }
        const pages = features
          .filter((f) => f.staticDir)
          .map(({ feature }) => ({ id: feature.id, page: `/${feature.id}/` }));
        registerShellRoutes(app, pages);
      },
    },
  );
  // Hosts on one PostgreSQL database share their change events, so live queries hold across them.
  if (env.DATABASE_URL) {
    const bridge = await listenForChanges(env.DATABASE_URL, (event) => host.live.remote(event), warn);
    host.live.bridge(bridge);
  }
  const { server, port } = await listen(host.app.fetch, options);
  const detachSockets = attachLiveSockets(server as Server, host.app.fetch);
  for (const watcher of watchers) watcher.watch(host.features);
  const shown = options.host === '0.0.0.0' || options.host === '::' ? 'localhost' : options.host;
  return {
    url: `http://${shown.includes(':') ? `[${shown}]` : shown}:${port}`,
    features,
    async close(graceMs = 30_000) {
      drain.start();
      // Push streams end now: their pages reconnect, to another host behind the balancer.
      await host.live.shutdown();
      detachSockets();
      (server as Server).closeIdleConnections?.();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      await drain.settled(graceMs);
      // Responses of the last calls are still being written: let their sockets end on their own.
      (server as Server).closeIdleConnections?.();
      const timer = setInterval(() => (server as Server).closeIdleConnections?.(), 50);
      await Promise.race([closed, new Promise((r) => setTimeout(r, 2000).unref())]);
      clearInterval(timer);
      (server as Server).closeAllConnections?.();
      await closed;
      for (const watcher of watchers) watcher.close();
      for (const { feature } of features) if (!released.has(feature)) feature.close?.();
      await rateLimiter?.close();
      if (database) await (await database).close();
    },
  };
}

/** The shared database for one feature runtime: closing the runtime leaves it open for the others. */
function borrowed(client: SqlClient): SqlClient {
  return {
    engine: client.engine,
    location: client.location,
    transactionTimeoutMs: client.transactionTimeoutMs,
    transaction: (role, fn, options) => client.transaction(role, fn, options),
    adminTransaction: (fn) => client.adminTransaction(fn),
    close: async () => {},
  };
}

/** `dist/` of a feature at `/{featureId}/`; paths without an extension fall back to `index.html` (SPA). */
function mountClient(app: Parameters<NonNullable<HostOptions['before']>>[0], featureId: string, dir: string): void {
  const prefix = `/${featureId}`;
  const files = serveStatic({ root: dir, rewriteRequestPath: (p) => p.slice(prefix.length) || '/' });
  const page = serveStatic({ root: dir, rewriteRequestPath: () => '/index.html' });
  app.get(prefix, (c) => c.redirect(`${prefix}/`, 301));
  app.use(`${prefix}/*`, async (c, next) => {
    await next();
    // A sandboxed frame has an opaque origin: its module scripts are cross-origin requests.
    if (path.extname(c.req.path)) c.header('access-control-allow-origin', '*');
  });
  app.use(`${prefix}/*`, files);
  app.get(`${prefix}/*`, (c, next) => (path.extname(c.req.path) ? next() : page(c, next)));
}

async function listen(
  fetch: (request: Request) => Response | Promise<Response>,
  options: ServeOptions,
): Promise<{ server: ServerType; port: number }> {
  for (let port = options.port, tries = 0; ; port++, tries++) {
    const server = serve({ fetch, port, hostname: options.host });
    const outcome = await new Promise<'ok' | NodeJS.ErrnoException>((resolve) => {
      server.once('listening', () => resolve('ok'));
      server.once('error', (error: NodeJS.ErrnoException) => resolve(error));
    });
    if (outcome === 'ok') return { server, port: (server.address() as { port: number }).port };
    server.close();
    if (outcome.code !== 'EADDRINUSE' || options.strictPort || tries >= 10 || options.port === 0) throw outcome;
  }
}
