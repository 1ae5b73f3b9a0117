import { existsSync } from 'node:fs';
import path from 'node:path';
import { loadBuiltFeature } from '../feature/load-built-feature.js';
import type { SqlClient } from '../data/sql-client.js';
import { FeatureRuntime } from '../feature/feature-runtime.js';
import { hostedFeature, type HostedFeature } from '../feature/hosted-feature.js';
import { readManifest } from '../feature/manifest.js';
import { UsageError } from '../common/usage-error.js';
import { fetchRelease } from './releases.js';
import type { FeatureSource } from './serve-config.js';

/** A feature ready to serve, with the folder of its static client (if it has one here). */
export interface ServedFeature {
  feature: HostedFeature;
  /** `dist/` of a built feature, served at `/{featureId}/`. */
  staticDir: string | null;
}

export interface LoadOptions {
  /** Opened on first need: only features with tables use it. */
  database: () => Promise<SqlClient>;
  cacheDir: string;
  /** The secrets (`ctx.secrets`) of a feature, by its id. Default: none. */
  secrets?: (featureId: string) => Record<string, string>;
  warn: (message: string) => void;
  /** Load each feature on the first request that needs it (its files are checked now). */
  lazy?: boolean;
}

/**
 * Loads every source. A feature that fails its integrity check is still served, unloaded, with
 * the reason in `/_health` and `/_admin` (calls get 503); the others serve normally.
 *
 * @example
 * const served = await loadFeatures([{ kind: 'built', dir: 'feature-a' }], options)
 */
export async function loadFeatures(sources: readonly FeatureSource[], options: LoadOptions): Promise<ServedFeature[]> {
  const served: ServedFeature[] = [];
  for (const source of sources) {
    const one = await loadSource(source, options);
    if (served.some((s) => s.feature.id === one.feature.id))
      throw new UsageError(`Feature "${one.feature.id}" is listed twice`);
    served.push(one);
  }
  return served;
}

async function loadSource(source: FeatureSource, options: LoadOptions): Promise<ServedFeature> {
  const secretsOf = options.secrets ?? (() => ({}));
  const load = {
    database: options.database,
    secrets: secretsOf,
    warn: options.warn,
    lazy: options.lazy,
  };
  if (source.kind === 'built') {
    const serverDir = existsSync(path.join(source.dir, 'dist-server', 'feature.json'))
      ? path.join(source.dir, 'dist-server')
      : source.dir;
    if (!existsSync(path.join(serverDir, 'feature.json'))) {
      throw new UsageError(`${source.dir} has no dist-server/feature.json: run "vite build" in the feature repo first`);
    }
    const clientDir = path.join(path.dirname(serverDir), 'dist');
    const feature = await loadBuiltFeature(serverDir, load);
    return { feature, staticDir: existsSync(path.join(clientDir, 'index.html')) ? clientDir : null };
  }
  if (source.kind === 'manifest') {
    const manifest = readManifest(source.file, { runtime: true, warn: options.warn });
    const sf = manifest.serverFunctions;
    if (!sf?.endpoint) {
      return { feature: await loadBuiltFeature(path.dirname(source.file), load), staticDir: null };
    }
    // Endpoint mode: no code of its own; the runtime forwards every declared function.
    const secrets = secretsOf(manifest.id);
    return {
      feature: new FeatureRuntime(manifest, { modules: () => [] }, { secrets: () => secrets }).feature,
      staticDir: null,
    };
  }
  const fetched = await fetchRelease(source.location, options.cacheDir);
  if ('dir' in fetched) {
    const feature = await loadBuiltFeature(fetched.dir, load);
    return { feature, staticDir: null };
  }
  const id = fetched.id ?? 'unknown-feature';
  const feature = hostedFeature({ id, raw: { id }, version: fetched.release?.version }, null);
  feature.unavailableReason = fetched.unavailable;
  options.warn(`favn serve: ${id} stays unloaded: ${fetched.unavailable}`);
  return { feature, staticDir: null };
}
