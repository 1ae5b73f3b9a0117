import { readFile } from 'node:fs/promises';
import type { Plugin } from 'vite';
import { UsageError } from '../devserver/common/usage-error.js';
import { CLIENT_SPECIFIER, REACT_SPECIFIER, RUNTIME_FILES, type PluginState } from './options.js';
import { scanExports } from '../devserver/scan/scan-exports.js';
import { isServerModule, relativeName } from '../devserver/scan/server-modules.js';
import { transformToRpcProxy } from './transform-to-rpc-proxy.js';

/**
 * Client environments: every `*.server.*` module becomes RPC proxies at load time, so no byte of
 * its body or imports enters the client graph. Server environments keep the real module.
 */
export function clientProxyPlugin(state: () => PluginState): Plugin {
  return {
    name: 'favn:client-proxy',
    enforce: 'pre',
    config() {
      // One copy of the client runtime, shared by proxies and user code (RpcError instanceof).
      return { optimizeDeps: { exclude: [CLIENT_SPECIFIER, REACT_SPECIFIER] } };
    },
    resolveId(id) {
      return RUNTIME_FILES[id] ?? null;
    },
    async load(id) {
      if (this.environment.config.consumer !== 'client' || !isServerModule(id)) return null;
      const { root, manifest, proxyExports } = state();
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
      });
      proxyExports.set(absolute, proxy.exportNames.join(','));
      return { code: proxy.code, map: proxy.map };
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
