import { getRequestListener } from '@hono/node-server';
import type { Plugin, ViteDevServer } from 'vite';
import { parseAuthConfig } from '../devserver/auth/auth-config.js';
import { createIdentify } from '../devserver/auth/create-identify.js';
import { createHost } from '../devserver/host/host.js';
import { readEnvLocal } from '../devserver/common/env-local.js';
import { devDatabaseBanner, devDatabasePort, serveDevDatabase } from '../devserver/data/dev-socket.js';
import { openRateLimiter } from '../devserver/rate-limit/open-rate-limiter.js';
import { LIVE_PREFIX, RPC_PREFIX, STORAGE_PREFIX } from '../runtime/protocol.js';
import { DevReloader } from './dev-reloader.js';
import { listenForChanges } from '../devserver/live/postgres-changes.js';
import { attachLiveSockets } from '../devserver/host/live-socket.js';
import { SERVER_ENVIRONMENT, type PluginState } from './options.js';
import { replayProblemsOnConnect } from './report-problems.js';
import { isServerModule } from '../devserver/scan/server-modules.js';
import { registerDevHost, runWithRequest } from '../devserver/ssr/in-process.js';
import { registerShellPage, SHELL_PATH } from '../devserver/serve/shell-route.js';

const HOST_PATHS = [`${RPC_PREFIX}/`, '/_health', '/_admin', `${STORAGE_PREFIX}/`, `${LIVE_PREFIX}/`, SHELL_PATH];

/** True for the URLs the host answers in `vite` dev; they never reach Vite's own middlewares. */
export function isHostPath(url: string): boolean {
  return HOST_PATHS.some((p) => url.startsWith(p));
}

/**
 * `vite` dev: mounts the host into Vite's own server, so one port serves the page and
 * `POST /rpc/...`; server code reloads through Vite's module graph on save.
 */
export function devHostPlugin(state: () => PluginState): Plugin {
  let feature: DevReloader | null = null;
  return {
    name: 'favn:dev-host',
    apply: 'serve',
    config() {
      return {
        // Server modules load in an environment of ours, apart from any framework's SSR.
        environments: { [SERVER_ENVIRONMENT]: { consumer: 'server' } },
        // The dev database and generated files are ours: Vite's watcher need not walk them.
        server: { watch: { ignored: ['**/.favn/**'] } },
      };
    },
    async configureServer(server: ViteDevServer) {
      const logger = server.config.logger;
      // Dev limits only the features whose feature.json sets rateLimits (to try 429s locally).
      const rateLimiter = openRateLimiter({ ...readEnvLocal(state().root), ...process.env });
      const host = createHost([], {
        dev: true,
        rateLimiter,
        bodyLimit: state().options.bodyLimit,
        identify: createIdentify(parseAuthConfig(state().options.auth, { field: 'serverFns({ auth })' }), {
          dev: true,
        }),
        logCall: (line) => logger.info(line, { timestamp: true }),
        logError: (message, error) => {
          const err = error instanceof Error ? error : new Error(String(error));
          logger.error(`${message}\n${err.stack ?? err.message}`, { timestamp: true, error: err });
        },
      });
      // /_shell (opt-in): the page in a sandboxed iframe through the relay, as a platform runs it.
      const env = { ...readEnvLocal(state().root), ...process.env };
      const shell = state().options.shell ?? env.FAVN_DEV_SHELL === '1';
      if (shell) registerShellPage(host.app, () => [{ id: state().manifest.id, page: '/' }]);
      feature = new DevReloader(server, state(), host);
      replayProblemsOnConnect(server);
      void feature.reload();

      const listener = getRequestListener(host.app.fetch);
      // Live queries' WebSocket on Vite's own server, beside its HMR socket.
      const detachSockets = server.httpServer ? attachLiveSockets(server.httpServer, host.app.fetch) : () => {};
      const unregister = registerDevHost(host.app.fetch);
      server.middlewares.use(function favnHost(req, res, next) {
        const url = req.url ?? '';
        if (shell && req.headers.origin === 'null' && req.headers['sec-fetch-dest'] === 'script') {
          // The page in /_shell's sandboxed frame has an opaque origin, so its module scripts are
          // cross-origin requests; they carry no referrer to tell them from another site's frame,
          // hence opt-in, and module scripts only (a fetch() of the sources stays refused).
          res.setHeader('access-control-allow-origin', 'null');
          res.setHeader('vary', 'origin');
        }
        if (isHostPath(url)) return void listener(req, res);
        // Server rendering of this request (a framework's SSR) calls server functions as its caller.
        runWithRequest(req, next);
      });
      // The dev database over the PostgreSQL protocol, for psql and favn db (FAVN_DB_PORT, 0/off: none).
      const dbPort = devDatabasePort(env);
      const onSchemaChange = () => {
        feature?.runtime.schemaChanged();
        feature?.scheduleReload();
      };
      // With DATABASE_URL, writes by other hosts of the database (a favn serve, a teammate) count too.
      if (env.DATABASE_URL) {
        const warn = (message: string) => logger.warn(`[favn] ${message}`, { timestamp: true });
        listenForChanges(env.DATABASE_URL, (event) => host.live.remote(event), warn).then(
          (bridge) => host.live.bridge(bridge),
          (error: Error) => warn(`live queries: cannot listen for other hosts' changes (${error.message})`),
        );
      }
      // Rows changed through psql or favn db re-run the live queries of every feature.
      const onWrite = () => host.live.changed({ featureId: null, tables: null });
      const database =
        dbPort === null ? null : await serveDevDatabase(state().root, { port: dbPort, onSchemaChange, onWrite });
      if (database || shell) {
        // Printed under Vite's own URLs, where people look for them.
        const printUrls = server.printUrls.bind(server);
        server.printUrls = () => {
          printUrls();
          if (database) logger.info(devDatabaseBanner(database.url, state().manifest.id));
          const local = server.resolvedUrls?.local[0];
          if (shell && local)
            logger.info(`  ➜  Shell:    ${new URL(SHELL_PATH, local).href} (the page embedded in a sandbox)`);
        };
      }
      server.httpServer?.once('close', () => {
        unregister();
        void host.live.shutdown();
        detachSockets();
        void database?.close();
        void feature?.close();
        void rateLimiter.close();
      });
    },
    hotUpdate({ file, type }) {
      // Runs once per environment after Vite invalidated its module graph; react on our own.
      if (!feature || this.environment.name !== SERVER_ENVIRONMENT) return;
      if (isServerModule(file) || file === state().manifestFile) {
        feature.scheduleReload(file, type);
        // Server modules reload through our own runner; nothing else in it should react.
        return [];
      }
      if (feature.affects(file)) feature.scheduleReload(file, type);
      else feature.otherFileChanged(file, type);
    },
  };
}
