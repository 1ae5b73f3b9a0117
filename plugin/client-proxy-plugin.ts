import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { SourceMap } from 'magic-string';
import type { Plugin } from 'vite';
import { UsageError } from '../devserver/common/usage-error.js';
import {
  CLIENT_SPECIFIER,
  REACT_SPECIFIER,
  RUNTIME_DIR,
  RUNTIME_FILES,
  VUE_SPECIFIER,
  SERVER_ENVIRONMENT,
  SSR_SPECIFIER,
  type PluginState,
} from './options.js';
import { scanExports } from '../devserver/scan/scan-exports.js';
import { findServerModules, isServerModule, relativeName } from '../devserver/scan/server-modules.js';
import { transformToRpcProxy } from './transform-to-rpc-proxy.js';

/** Frameworks' guards against server-only files in client code, by plugin name. */
const SERVER_ONLY_GUARDS = ['react-router:dot-server'];
/** An import of a server module, with or without its extension (`./notes.server`). */
const SERVER_MODULE_SPECIFIER = /\.server(?:\.(?:js|ts|mjs|mts|jsx|tsx))?$/;

/**
 * Client environments: every `*.server.*` module becomes RPC proxies at load time, so no byte of
 * its body or imports enters the client graph. Our server environment keeps the real module; any
 * other server environment (a framework's SSR) gets stand-ins that call the host in-process.
 */
export function clientProxyPlugin(state: () => PluginState): Plugin {
  const ignored = new IgnoredServerModules(() => state());
  return {
    name: 'favn:client-proxy',
    enforce: 'pre',
    config() {
      // One copy of the client runtime, shared by proxies and user code (RpcError instanceof).
      return { optimizeDeps: { exclude: [CLIENT_SPECIFIER, REACT_SPECIFIER, VUE_SPECIFIER] } };
    },
    configResolved(config) {
      allowProxiedServerModules(config.plugins, ignored);
    },
    resolveId(id, importer) {
      const runtime = RUNTIME_FILES[id] ?? runtimeNeighbour(id, importer);
      if (runtime) return runtime;
      if (id === SSR_SPECIFIER && this.environment.config.consumer === 'server') return { id, external: true };
      return null;
    },
    async load(id) {
      // Every server module outside node_modules is stood in for, except those the user `ignore`d.
      if (!isServerModule(id) || (await ignored.has(id.split('?', 1)[0] as string))) return null;
      const environment = this.environment;
      if (environment.config.consumer === 'server') {
        if (environment.name === SERVER_ENVIRONMENT) return null;
        return standIn(id, state(), {
          module: SSR_SPECIFIER,
          serverDir: state().options.serverOutDir ?? 'dist-server',
        });
      }
      return standIn(id, state());
    },
    async hotUpdate({ file, type, read }) {
      if (this.environment.config.consumer !== 'client' || type !== 'update' || !isServerModule(file)) return;
      const { root, proxyExports } = state();
      const before = proxyExports.get(file);
      if (before === undefined) return;
      try {
        const names = scanExports(await read(), relativeName(root, file)).exports.map((e) => e.name);
        // Same export list: the proxy is byte-identical, so the page need not update.
        if (names.join(',') === before) return [];
      } catch {
        // A syntax error: let the normal update run so the overlay shows it.
      }
      return;
    },
  };
}

/**
 * Server modules the user opted out of with `ignore`: those load as themselves everywhere. Every
 * other `*.server.*` module outside node_modules is stood in for (also one outside the root, or
 * added since), so server code never loads as itself in client code by mistake.
 */
class IgnoredServerModules {
  #state: () => PluginState;
  #all: Set<string> | null = null;
  #ignored = new Set<string>();

  constructor(state: () => PluginState) {
    this.#state = state;
  }

  async has(file: string): Promise<boolean> {
    const { root, options } = this.#state();
    if (!options.ignore?.length) return false;
    const absolute = path.resolve(file);
    if (!this.#all?.has(absolute)) {
      const [all, kept] = await Promise.all([findServerModules(root), findServerModules(root, options.ignore)]);
      this.#all = new Set(all);
      const keptSet = new Set(kept);
      this.#ignored = new Set(all.filter((f) => !keptSet.has(f)));
    }
    return this.#ignored.has(absolute);
  }
}

/**
 * A runtime file's relative import of another (`./client.js` in `react.js`), resolved to the same
 * plain id the specifiers resolve to. Left to Vite, a file in node_modules gets the optimizer's
 * `?v=` query, so the browser would load a second client (its own settings, its own featureId)
 * beside the one that proxies and `configureRpc` reach through the specifiers.
 */
function runtimeNeighbour(id: string, importer: string | undefined): string | null {
  if (!importer || !id.startsWith('.') || !id.endsWith('.js')) return null;
  const from = path.resolve(importer.split('?', 1)[0] as string);
  const target = path.resolve(path.dirname(from), id);
  return path.dirname(from) === RUNTIME_DIR && path.dirname(target) === RUNTIME_DIR ? target : null;
}

/**
 * React Router refuses `*.server.*` imports in client code, to keep server code out of the browser.
 * Ours never reach it: the client gets proxies. The guard still decides for everything else, by
 * what an import resolves to: a dependency's `.server` file, or one the user `ignore`d.
 */
function allowProxiedServerModules(plugins: readonly Plugin[], ignored: IgnoredServerModules): void {
  for (const plugin of plugins) {
    if (!SERVER_ONLY_GUARDS.includes(plugin.name) || !plugin.resolveId) continue;
    const hook = plugin.resolveId;
    const original = typeof hook === 'function' ? hook : hook.handler;
    const guarded: typeof original = async function (this: ThisParameterType<typeof original>, id, importer, options) {
      if (SERVER_MODULE_SPECIFIER.test(id.split('?', 1)[0] ?? id)) {
        const resolved = await this.resolve(id, importer, { ...options, skipSelf: true });
        if (resolved && !resolved.external && isServerModule(resolved.id)) {
          if (!(await ignored.has(resolved.id.split('?', 1)[0] as string))) return null;
        }
      }
      return original.call(this, id, importer, options);
    };
    (plugin as { resolveId: Plugin['resolveId'] }).resolveId =
      typeof hook === 'function' ? guarded : { ...hook, handler: guarded };
  }
}

/** The stand-in module for a server module: proxies (client) or in-process callers (SSR). */
async function standIn(
  id: string,
  { root, manifest, proxyExports }: PluginState,
  inProcess?: { module: string; serverDir: string },
): Promise<{ code: string; map: SourceMap }> {
  const absolute = id.split('?', 1)[0] as string;
  const file = relativeName(root, absolute);
  const code = await readFile(absolute, 'utf8');
  let scan;
  try {
    scan = scanExports(code, file);
  } catch (error) {
    throw asRollupError(error, absolute);
  }
  const [firstError] = scan.errors;
  if (firstError) throw asRollupError(firstError, absolute);
  const proxy = transformToRpcProxy(code, scan.exports, {
    featureId: manifest.id,
    clientModule: CLIENT_SPECIFIER,
    file: absolute,
    inProcess,
  });
  if (!inProcess) proxyExports.set(absolute, proxy.exportNames.join(','));
  return { code: proxy.code, map: proxy.map };
}

function asRollupError(error: unknown, id: string): Error {
  if (error instanceof UsageError) {
    return Object.assign(new Error(error.message), {
      id,
      plugin: 'favn:client-proxy',
      loc: error.line ? { file: id, line: error.line, column: (error.column ?? 1) - 1 } : undefined,
    });
  }
  return error as Error;
}
