import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { version as viteVersion, type Plugin } from 'vite';
import { compareExports } from '../devserver/scan/check-exports.js';
import { SERVER_ENVIRONMENT, type PluginState } from './options.js';
import { scanProject } from '../devserver/scan/server-modules.js';
import { bundleHandlers } from '../devserver/isolate/bundle-handlers.js';
import type { ServerFunctionsManifest } from '../devserver/feature/manifest.js';
import { DEFAULT_SCHEMA_FILE, SCHEMA_EXPORT } from '../devserver/feature/schema-loader.js';

const ENTRY_ID = 'virtual:favn/server-entry';
const RESOLVED_ENTRY_ID = '\0favn:server-entry';
const DEFAULT_MODULE = 'server-functions.js';
/** The isolate bundle of `query`/`mutation`/`action` handlers, beside the server bundle. */
const HANDLERS_BUNDLE = 'handlers.js';

/** Vite 8 bundles with Rolldown (`build.rolldownOptions`), Vite 7 with Rollup (`build.rollupOptions`). */
const BUNDLER_OPTIONS = Number(viteVersion.split('.')[0]) >= 8 ? 'rolldownOptions' : 'rollupOptions';

/**
 * `vite build`: after the client, bundles every server module into one ESM entry
 * (`dist-server/server-functions.js`) and writes the runtime manifest beside it with refreshed
 * `exports` and `serverFunctionsSha256`. Duplicates, non-functions and `export *` fail the build.
 */
export function serverBuildPlugin(state: () => PluginState): Plugin {
  return {
    name: 'favn:server-build',
    apply: 'build',
    config() {
      return {
        // Opt `vite build` into building the whole app: the client, then our server bundle.
        builder: {},
        environments: {
          [SERVER_ENVIRONMENT]: {
            consumer: 'server',
            build: {
              outDir: 'dist-server',
              emptyOutDir: true,
              copyPublicDir: false,
              minify: false,
              [BUNDLER_OPTIONS]: {
                input: { 'server-functions': ENTRY_ID },
                output: {
                  format: 'es',
                  entryFileNames: '[name].js',
                  // One file: Rolldown says it with `codeSplitting`, Rollup with `inlineDynamicImports`.
                  ...(BUNDLER_OPTIONS === 'rolldownOptions'
                    ? { codeSplitting: false }
                    : { inlineDynamicImports: true }),
                },
              },
            },
          },
        },
      };
    },
    configResolved(config) {
      const env = config.environments[SERVER_ENVIRONMENT];
      if (!env) return;
      const { options } = state();
      const moduleName = serverModuleName(state());
      env.build.outDir = path.resolve(config.root, options.serverOutDir ?? 'dist-server');
      const bundler = (env.build as unknown as Record<string, { output?: unknown } | undefined>)[BUNDLER_OPTIONS];
      const output = bundler?.output as { entryFileNames?: string } | undefined;
      if (output && !Array.isArray(output)) output.entryFileNames = moduleName;
      // Bundle dependencies so the server bundle runs from any folder; Node built-ins stay imports.
      env.resolve.noExternal = true;
      if (options.external?.length) env.resolve.external = options.external;
    },
    buildApp: {
      order: 'post',
      async handler(builder) {
        const client = builder.environments.client;
        if (client && !client.isBuilt) await builder.build(client);
        const server = builder.environments[SERVER_ENVIRONMENT];
        if (!server || server.isBuilt) return;
        const { manifest, root } = state();
        if (manifest.serverFunctions?.endpoint) {
          await writeRuntimeManifest(state(), server.config.build.outDir, manifest.serverFunctions.exports, null);
          return;
        }
        const scan = await scanProject(root, { ignore: state().options.ignore });
        if (scan.modules.length === 0 && !manifest.serverFunctions) return;
        await builder.build(server);
      },
    },
    resolveId(id) {
      return id === ENTRY_ID ? RESOLVED_ENTRY_ID : null;
    },
    async load(id) {
      if (id !== RESOLVED_ENTRY_ID) return null;
      const { root, manifestFile, options } = state();
      const scan = await scanProject(root, { classify: true, ignore: options.ignore });
      const problems = scan.errors.map((e) => e.message);
      const report = compareExports(scan.modules, []);
      for (const dup of report.duplicates) {
        problems.push(
          `"${dup.name}" is exported by more than one server module (${dup.places.join(' and ')}): server functions share one namespace per feature, rename one.`,
        );
      }
      for (const mod of scan.modules) {
        for (const exp of mod.exports) {
          if (exp.kind === 'value')
            problems.push(
              `${mod.file}:${exp.line}: export "${exp.name}" is not a function; server modules may only export server functions.`,
            );
        }
      }
      if (scan.modules.length > 0 && report.names.length === 0) {
        problems.push(
          `No server module exports a function, but ${path.basename(manifestFile)} has serverFunctions: the runtime manifest's exports must not be empty.`,
        );
      }
      if (problems.length) this.error(`[favn] The server bundle cannot be built:\n${problems.join('\n')}`);
      const lines = scan.modules
        .filter((m) => m.exports.length > 0)
        .map((m) => `export { ${m.exports.map((e) => e.name).join(', ')} } from ${JSON.stringify(m.absolute)};`);
      const schemaFile = path.resolve(root, options.schema ?? DEFAULT_SCHEMA_FILE);
      // The schema module's namespace: the runtime reads it as `vite` dev does (schemaOf).
      if (existsSync(schemaFile)) lines.push(`export * as ${SCHEMA_EXPORT} from ${JSON.stringify(schemaFile)};`);
      return lines.join('\n');
    },
    async writeBundle(outputOptions, bundle) {
      if (this.environment.name !== SERVER_ENVIRONMENT) return;
      const moduleName = serverModuleName(state());
      const chunk = bundle[moduleName];
      if (!chunk || chunk.type !== 'chunk')
        this.error(`[favn] The server bundle ${moduleName} was not written: this is a bug.`);
      const outDir = outputOptions.dir ?? this.environment.config.build.outDir;
      const bytes = await readFile(path.join(outDir, moduleName));
      const sha256 = createHash('sha256').update(bytes).digest('hex');
      let handlers: ServerFunctionsManifest['handlers'];
      const { root, options } = state();
      const scan = await scanProject(root, { classify: true, ignore: options.ignore });
      const modules = scan.modules
        .map((m) => ({
          absolute: m.absolute,
          handlers: m.exports.flatMap((e) => (e.handler ? [{ name: e.name, kind: e.handler }] : [])),
        }))
        .filter((m) => m.handlers.length > 0);
      if (modules.length > 0) {
        let bundle;
        try {
          bundle = await bundleHandlers(root, modules, { alias: this.environment.config.resolve.alias });
        } catch (error) {
          this.error(`[favn] The handler bundle cannot be built:\n${(error as Error).message}`);
        }
        await writeFile(path.join(outDir, HANDLERS_BUNDLE), bundle.code);
        handlers = {
          bundle: HANDLERS_BUNDLE,
          sha256: createHash('sha256').update(bundle.code).digest('hex'),
          kinds: bundle.kinds,
        };
      }
      await writeRuntimeManifest(
        state(),
        outDir,
        chunk.exports.filter((name) => name !== SCHEMA_EXPORT),
        sha256,
        handlers,
      );
    },
  };
}

/** File name of the server bundle: `serverFunctions.module` when it is a plain `.js` name. */
function serverModuleName(state: PluginState): string {
  const declared = state.manifest.serverFunctions?.module;
  return declared && /^[\w.-]+\.m?js$/.test(declared) ? declared : DEFAULT_MODULE;
}

async function writeRuntimeManifest(
  state: PluginState,
  outDir: string,
  exports: readonly string[],
  sha256: string | null,
  handlers?: ServerFunctionsManifest['handlers'],
): Promise<void> {
  const { raw } = state.manifest;
  const serverFunctions = sha256
    ? {
        module: serverModuleName(state),
        exports: [...exports],
        serverFunctionsSha256: sha256,
        ...(handlers ? { handlers } : {}),
      }
    : { ...(raw.serverFunctions as object), exports: [...exports] };
  await mkdir(outDir, { recursive: true });
  await writeFile(path.join(outDir, 'feature.json'), `${JSON.stringify({ ...raw, serverFunctions }, null, 2)}\n`);
}
