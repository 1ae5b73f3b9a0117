import { AsyncLocalStorage } from 'node:async_hooks';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { rpcPath } from '../../runtime/protocol.js';
import { RpcError } from '../../runtime/rpc-error.js';

/**
 * Server functions called from server-rendered code (a React Router loader, an SSR render): the
 * plugin turns their imports there into callers made by `createInProcessFunction`, which run the
 * call through the host in this process, with no socket, exactly as a browser's call would run
 * (validation, auth, the function's kind, the contract's errors as `RpcError`). The caller is the
 * request being rendered: its credentials (cookie, `authorization`, the dev identity) are those of
 * the call.
 */

/** A host's fetch handler (Hono's `app.fetch`). */
export type HostFetch = (request: Request) => Response | Promise<Response>;

/** Headers of the request being rendered, the only part of it a call uses. */
export interface RequestLike {
  headers: Headers | Record<string, string | string[] | undefined>;
}

/** Headers that carry the caller's identity into the call. */
const CREDENTIAL_HEADERS = ['authorization', 'cookie', 'x-auth-request-access-token', 'x-favn-dev-identity'] as const;

interface BuiltHost {
  fetch: HostFetch;
  close(): Promise<void>;
}

interface InProcessState {
  scope: AsyncLocalStorage<Headers>;
  /** The dev server's host, registered by the plugin. */
  devHost: HostFetch | null;
  /** Built features' hosts by folder, loaded on their first call in production. */
  builtHosts: Map<string, Promise<BuiltHost>>;
  warnedNoScope: boolean;
}

// One state per process, whichever copy of this file a bundler or runner loaded.
const STATE_KEY = Symbol.for('favn.inProcess');
const state: InProcessState = ((globalThis as Record<symbol, unknown>)[STATE_KEY] ??= {
  scope: new AsyncLocalStorage<Headers>(),
  devHost: null,
  builtHosts: new Map(),
  warnedNoScope: false,
} satisfies InProcessState) as InProcessState;

/**
 * Runs `fn` as part of handling `request`: server functions it calls act as that request's caller.
 * `vite` dev does this for every request by itself; in production wrap request handling with it
 * (or use `favnRequestMiddleware` in React Router).
 *
 * @example
 * app.use((req, res, next) => runWithRequest(req, next))
 */
export function runWithRequest<T>(request: RequestLike, fn: () => T): T {
  return state.scope.run(credentialsOf(request.headers), fn);
}

/**
 * React Router middleware (`export const middleware = [favnRequestMiddleware]` in `app/root.tsx`):
 * server functions called by loaders and actions act as the request's caller.
 *
 * @example
 * export const middleware = [favnRequestMiddleware]
 */
export function favnRequestMiddleware<T>(args: { request: Request }, next: () => Promise<T>): Promise<T> {
  return runWithRequest(args.request, next);
}

/** @internal Registers the dev server's host (the plugin calls this); returns the unregister. */
export function registerDevHost(fetch: HostFetch): () => void {
  state.devHost = fetch;
  return () => {
    if (state.devHost === fetch) state.devHost = null;
  };
}

/**
 * The server-side caller of one server function: `(…args) => Promise<result>`, the same shape as
 * the browser's proxy. `serverDir` is the built feature (`dist-server/`, relative to the working
 * directory) used when no dev server runs in this process.
 *
 * @example
 * export const getReport = createInProcessFunction('feature-reports', 'getReport', 'dist-server')
 */
export function createInProcessFunction(
  featureId: string,
  fnName: string,
  serverDir = 'dist-server',
): (...args: unknown[]) => Promise<unknown> {
  const call = async (...args: unknown[]) => {
    const host = await hostFor(serverDir);
    const headers = new Headers(state.scope.getStore() ?? noScope());
    headers.set('content-type', 'application/json');
    // A call made by this server, not a cross-site browser request.
    headers.set('sec-fetch-site', 'same-origin');
    const request = new Request(`http://in-process${rpcPath(featureId, fnName)}`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ args }),
    });
    const response = await host(request);
    const text = await response.text();
    const requestId = response.headers.get('x-request-id');
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new RpcError(response.status, `${fnName} returned a response that is not JSON`, requestId);
    }
    if (response.ok) return body;
    const error = (body as { error?: unknown } | null)?.error;
    throw new RpcError(
      response.status,
      typeof error === 'string' ? error : `RPC failed: ${response.status}`,
      requestId,
    );
  };
  return Object.defineProperties(call, {
    name: { value: fnName },
    featureId: { value: featureId, enumerable: true },
    fnName: { value: fnName, enumerable: true },
  });
}

function hostFor(serverDir: string): HostFetch | Promise<HostFetch> {
  if (state.devHost) return state.devHost;
  const dir = path.resolve(process.env.FAVN_SERVER_DIR ?? serverDir);
  let host = state.builtHosts.get(dir);
  if (!host) {
    host = loadBuiltHost(dir);
    state.builtHosts.set(dir, host);
    // A failed load is tried again on the next call (a build may land meanwhile).
    host.catch(() => state.builtHosts.delete(dir));
  }
  return host.then(
    (loaded) => loaded.fetch,
    (error: unknown) => {
      throw new RpcError(
        503,
        `Server functions unavailable: the built feature in ${dir} did not load (${(error as Error)?.message ?? error}). ` +
          'Build it (vite build, or react-router build), start the server from the feature folder, or set FAVN_SERVER_DIR.',
        null,
        { cause: error },
      );
    },
  );
}

/**
 * Production: the built feature on a host of its own in this process, set up as `favn serve` would
 * set it up in the feature's folder: `favn.config.json` there (auth, secrets, cross-site), secrets
 * from `FAVN_SECRET_<ID>__<NAME>`, default rate limits, tables in `DATABASE_URL` or PGlite in the
 * feature's `.favn/db`.
 */
async function loadBuiltHost(dir: string): Promise<BuiltHost> {
  const [
    { loadBuiltFeature },
    { readManifest },
    { createHost },
    { openDatabase },
    serveConfig,
    secretsModule,
    limiter,
    auth,
  ] = await Promise.all([
    import('../feature/load-built-feature.js'),
    import('../feature/manifest.js'),
    import('../host/host.js'),
    import('../data/open-database.js'),
    import('../serve/serve-config.js'),
    import('../serve/feature-secrets.js'),
    import('../rate-limit/open-rate-limiter.js'),
    import('../auth/create-identify.js'),
  ]);
  const root = path.dirname(dir);
  const warn = (message: string) => console.warn(`[favn] ${message}`);
  const configFile = path.join(root, 'favn.config.json');
  const config = serveConfig.readServeConfig(existsSync(configFile) ? configFile : undefined, []);
  const featureId = readManifest(path.join(dir, 'feature.json'), { runtime: true }).id;
  const secrets = secretsModule.readFeatureSecrets(config.secrets ?? {}, process.env, warn).of(featureId);
  let database: ReturnType<typeof openDatabase> | null = null;
  const feature = await loadBuiltFeature(dir, {
    database: () => (database ??= openDatabase(root, process.env)),
    secrets,
    warn,
  });
  const rateLimiter = limiter.openRateLimiter(process.env);
  const host = createHost([feature], {
    identify: auth.createIdentify(config.auth, { dev: false }),
    crossSite: config.crossSite,
    rateLimiter,
    defaultRateLimits: true,
  });
  const close = async () => {
    feature.close?.();
    await rateLimiter.close();
    if (database) await (await database).close();
  };
  closeOnSignals(close);
  return { fetch: host.app.fetch, close };
}

/**
 * The loaded feature holds a database and isolates, which would keep the process alive after its
 * server closed on SIGTERM/SIGINT. Close them then; a signal nobody else handles ends the process
 * as it would have without us.
 */
function closeOnSignals(close: () => Promise<void>): void {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      void close()
        .catch(() => {})
        .finally(() => {
          if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
        });
    });
  }
}

function credentialsOf(source: RequestLike['headers']): Headers {
  const headers = new Headers();
  for (const name of CREDENTIAL_HEADERS) {
    const value = source instanceof Headers ? source.get(name) : source[name];
    if (typeof value === 'string') headers.set(name, value);
    else if (Array.isArray(value)) headers.set(name, value.join(name === 'cookie' ? '; ' : ', '));
  }
  return headers;
}

/** Outside a request (or without the middleware in production): an anonymous caller, said once. */
function noScope(): Headers {
  if (!state.warnedNoScope && !state.devHost) {
    state.warnedNoScope = true;
    console.warn(
      '[favn] A server function was called during server rendering outside a request scope: it runs as an anonymous caller. ' +
        'Wrap request handling with runWithRequest(request, fn), or add favnRequestMiddleware (React Router), from @favn/vite-plugin-server-fns/ssr.',
    );
  }
  return new Headers();
}
