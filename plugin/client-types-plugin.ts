import path from 'node:path';
import type { Logger, Plugin } from 'vite';
import { writeClientTypes } from '../devserver/scan/client-types.js';
import { isServerModule } from '../devserver/scan/server-modules.js';
import type { PluginState } from './options.js';

/**
 * Keeps `.favn/types/` true: written when `vite` or `vite build` starts and after every change of
 * a server module or the schema in dev, so `tsc` and editors see the client's signatures.
 */
export function clientTypesPlugin(getState: () => PluginState): Plugin {
  let running: Promise<void> | null = null;
  let again = false;
  const warned = new Set<string>();
  const write = (logger: Logger): Promise<void> => {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      do {
        again = false;
        const { options, root } = getState();
        try {
          const result = await writeClientTypes(root, { schema: options.schema, ignore: options.ignore });
          for (const warning of result.warnings) {
            if (warned.has(warning)) continue;
            warned.add(warning);
            logger.warn(`[favn] ${warning}`);
          }
        } catch (error) {
          logger.warn(`[favn] Could not write the client types to .favn/types: ${(error as Error).message}`);
        }
      } while (again);
    })().finally(() => (running = null));
    return running;
  };
  let logger: Logger;
  return {
    name: 'favn:client-types',
    configResolved(config) {
      logger = config.logger;
    },
    async buildStart() {
      await write(logger);
    },
    configureServer(server) {
      const schema = () => path.resolve(getState().root, getState().options.schema ?? 'server/schema.ts');
      server.watcher.on('all', (event, file) => {
        if (event === 'addDir' || event === 'unlinkDir') return;
        const inHidden = path
          .relative(getState().root, file)
          .split(path.sep)
          .some((part) => part.startsWith('.'));
        if (!inHidden && (isServerModule(file) || path.resolve(file) === schema())) void write(logger);
      });
    },
  };
}
