import type { Executor } from '../executors/executor.js';
import type { IsolatePoolStats } from '../isolate/isolate-pool.js';
import type { FeatureManifest } from './manifest.js';
import type { FeatureData } from '../data/feature-data.js';

/** A feature the host serves: its manifest, how its functions run, and its secrets. */
export interface HostedFeature {
  id: string;
  manifest: FeatureManifest;
  /** `serverFunctions.exports` as a set; only these names may be called. */
  declared: ReadonlySet<string>;
  /** `null` when the manifest has no `serverFunctions`. */
  executor: Executor | null;
  secrets: Readonly<Record<string, string>>;
  timeoutMs: number;
  /** The feature's tables and database, `null` without `server/schema.ts`. */
  data: FeatureData | null;
  /** Why the feature cannot serve calls at all (e.g. a failed integrity check), if it cannot. */
  unavailableReason?: string;
  /** Its handler isolates, for `/_admin` (absent without handlers). */
  isolates?: () => IsolatePoolStats;
  /** Frees what the feature holds (its isolates); the host calls it on shutdown. */
  close?: () => void;
}

/**
 * Makes a `HostedFeature` from a manifest and an executor.
 *
 * @example
 * hostedFeature(readManifest('feature.json'), new ModuleExecutor(loadModules))
 */
export function hostedFeature(
  manifest: FeatureManifest,
  executor: Executor | null,
  secrets: Record<string, string> = {},
  data: FeatureData | null = null,
): HostedFeature {
  return {
    id: manifest.id,
    manifest,
    declared: new Set(manifest.serverFunctions?.exports ?? []),
    executor: manifest.serverFunctions ? executor : null,
    secrets: Object.freeze({ ...secrets }),
    timeoutMs: manifest.timeoutMs ?? 10_000,
    data,
  };
}
