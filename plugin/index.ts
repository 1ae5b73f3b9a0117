import { version as viteVersion, type Plugin } from 'vite';
import { refuseUnsupportedFrameworks, refuseUnsupportedVite } from './compatibility.js';
import { clientProxyPlugin } from './client-proxy-plugin.js';
import { clientTypesPlugin } from './client-types-plugin.js';
import { devHostPlugin } from './dev-host-plugin.js';
import { loadPluginState, type PluginState, type ServerFnsOptions } from './options.js';
import { privateFilesPlugin } from './private-files-plugin.js';
import { serverBuildPlugin } from './server-build-plugin.js';

export type { ServerFnsOptions } from './options.js';

/**
 * The Vite plugin: `*.server.*` imports become RPC proxies in client code, `vite` serves
 * `POST /rpc/{featureId}/{fn}` beside the page, and `vite build` also writes `dist-server/`.
 *
 * @example
 * // vite.config.ts
 * import serverFns from '@favn/vite-plugin-server-fns'
 * export default defineConfig({ plugins: [react(), serverFns()] })
 */
export default function serverFns(options: ServerFnsOptions = {}): Plugin[] {
  let state: PluginState | null = null;
  const getState = (): PluginState => {
    if (!state) throw new Error('[favn] The plugin was used before Vite resolved its config: this is a bug.');
    return state;
  };
  const setup: Plugin = {
    name: 'favn:setup',
    config() {
      refuseUnsupportedVite(viteVersion);
    },
    configResolved(config) {
      refuseUnsupportedFrameworks(config.plugins);
      state = loadPluginState(options, config.root, (m) => config.logger.warn(m));
    },
  };
  return [
    setup,
    privateFilesPlugin(options),
    clientProxyPlugin(getState),
    clientTypesPlugin(getState),
    devHostPlugin(getState),
    serverBuildPlugin(getState),
  ];
}

export { serverFns };
