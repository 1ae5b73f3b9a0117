import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readManifest, type FeatureManifest } from '../devserver/feature/manifest.js';

/** Options of `serverFns()`; every one is optional. */
export interface ServerFnsOptions {
  /** The feature manifest, relative to the Vite root. Default `feature.json`. */
  manifest?: string;
  /** Where `vite build` writes the server bundle and runtime manifest. Default `dist-server`. */
  serverOutDir?: string;
  /**
   * Dependencies of server modules to leave as imports in the server bundle instead of bundling
   * them (Node built-ins always stay imports). Default: bundle everything.
   */
  external?: string[];
  /** Largest RPC request body in dev, in bytes. Default 1 MiB. */
  bodyLimit?: number;
  /** The feature's tables, relative to the root. Default `server/schema.ts`. */
  schema?: string;
  /** Glob patterns (relative to the root) never searched for server modules. */
  ignore?: string[];
  /**
   * Auth in dev. Default `{ mode: 'none' }`: anonymous, or the dev identity chosen in `/_admin`.
   * `{ mode: 'jwt', ... }` verifies tokens as the platform host does (same fields as `favn serve`).
   */
  auth?: Record<string, unknown>;
  /**
   * Serve `/_shell` in dev: the feature's page in a sandboxed iframe (opaque origin) whose calls go
   * through the host page's relay, as a platform embeds it. Its module scripts are then served to
   * opaque origins (`Origin: null`), which pages of other sites can also use: turn it on to try
   * the embedding, not for every session. Also `FAVN_DEV_SHELL=1`. Default false.
   */
  shell?: boolean;
}

/** Specifiers of the client runtime that generated proxies and user code import. */
export const CLIENT_SPECIFIER = '@favn/vite-plugin-server-fns/client';
export const REACT_SPECIFIER = '@favn/vite-plugin-server-fns/react';
export const VUE_SPECIFIER = '@favn/vite-plugin-server-fns/vue';
/** What server-rendering stand-ins import; kept external so one copy runs per process. */
export const SSR_SPECIFIER = '@favn/vite-plugin-server-fns/ssr';

/**
 * Our own server environment: `vite` dev loads server modules through it, `vite build` bundles
 * them with it. Other server environments (a framework's SSR) get in-process stand-ins.
 */
export const SERVER_ENVIRONMENT = 'favn_server';

/** The folder of the shipped client runtime (`client.js`, `react.js`, `vue.js` and their imports). */
export const RUNTIME_DIR: string = fileURLToPath(new URL('../runtime', import.meta.url));

/** Files of this package the specifiers above resolve to, so the plugin also works unlinked. */
export const RUNTIME_FILES: Record<string, string> = {
  [CLIENT_SPECIFIER]: runtimeFile('client'),
  [REACT_SPECIFIER]: runtimeFile('react'),
  [VUE_SPECIFIER]: runtimeFile('vue'),
};

/** What the plugins of one `serverFns()` call share. */
export interface PluginState {
  options: ServerFnsOptions;
  root: string;
  manifestFile: string;
  manifest: FeatureManifest;
  /** Export names each server module had when its proxy was last generated. */
  proxyExports: Map<string, string>;
}

/** Reads the manifest for a resolved Vite root; a bad manifest is a startup error. */
export function loadPluginState(options: ServerFnsOptions, root: string, warn: (m: string) => void): PluginState {
  const manifestFile = path.resolve(root, options.manifest ?? 'feature.json');
  if (!existsSync(manifestFile)) {
    throw new Error(
      `[favn] No feature manifest at ${manifestFile}. Create it, e.g. {"id": "feature-my-feature", ` +
        `"serverFunctions": {"module": "server-functions.js", "exports": []}}, or set serverFns({ manifest }).`,
    );
  }
  return { options, root, manifestFile, manifest: readManifest(manifestFile, { warn }), proxyExports: new Map() };
}

function runtimeFile(name: string): string {
  // Compiled layout: dist/plugin/options.js -> dist/runtime/<name>.js
  return path.join(RUNTIME_DIR, `${name}.js`);
}
