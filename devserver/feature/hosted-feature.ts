import type { IsolatePoolStats } from '../isolate/isolate-pool.js';
import type { FunctionTable } from './function-table.js';
import type { FeatureManifest } from './manifest.js';
import type { FeatureData } from '../data/feature-data.js';

/** A feature the host serves: its manifest, how its functions run, and its secrets. */
export interface HostedFeature {
  id: string;
  manifest: FeatureManifest;
  /** `serverFunctions.exports` as a set; only these names may be called. */
  declared: ReadonlySet<string>;
  /** Its functions and how they run; `null` when the manifest has no `serverFunctions`. */
  functions: FunctionTable | null;
  secrets: Readonly<Record<string, string>>;
  timeoutMs: number;
  /** The feature's tables and database, `null` without `server/schema.ts`. */
  data: FeatureData | null;
  /** Why the feature cannot serve calls at all (e.g. a failed integrity check), if it cannot. */
  unavailableReason?: string;
  /** Why its handlers (`query`/`mutation`/`action`) cannot run as loaded, `null` when they can. */
  handlersError?: () => string | null;
  /** Its handler isolates, for `/_admin` (absent without handlers). */
  isolates?: () => IsolatePoolStats;
  /**
   * A feature that loads on first need (`favn serve`): starts its load and resolves once it has
   * loaded (rejects with a 503 `RequestError` when it failed); `null` once loaded. Absent: loaded
   * by whoever made it.
   */
  ready?: () => Promise<void> | null;
  /** Why the last load on first need failed (a lazy feature), `null` otherwise. */
  loadError?: () => string | null;
  /** Frees what the feature holds (its isolates); the host calls it on shutdown. */
  close?: () => void;
}

/**
 * Makes a `HostedFeature` from a manifest and its function table. `FeatureRuntime` and
 * `loadBuiltFeature` assemble whole features; this is for hosts that bring their own functions.
 *
 * @example
 * const functions = new FunctionTable('module', () => [{ file: 'api.js', exportNames: ['getData'], load: () => api }], [new ModuleExecutor()])
 * await functions.reload()
 * hostedFeature(readManifest('feature.json'), functions)
 */
export function hostedFeature(
  manifest: FeatureManifest,
  functions: FunctionTable | null,
  secrets: Record<string, string> = {},
  data: FeatureData | null = null,
): HostedFeature {
  return {
    id: manifest.id,
    manifest,
    declared: new Set(manifest.serverFunctions?.exports ?? []),
    functions: manifest.serverFunctions ? functions : null,
    secrets: Object.freeze({ ...secrets }),
    timeoutMs: manifest.timeoutMs ?? 10_000,
    data,
  };
}
