import type { HostedFeature } from '../feature/hosted-feature.js';
import type { FeatureManifest } from '../feature/manifest.js';
import { hostedFeature } from '../feature/hosted-feature.js';
import type { ReleaseHealth, ReleasedFeature } from '../host/health-route.js';
import { readAcceptedSeq } from './release-accepted.js';
import {
  checkReleases,
  newReleaseMemory,
  type ReleaseCheck,
  type ReleaseMemory,
  type ReleaseSource,
} from './releases.js';
import type { ReleaseEntry } from './release-signature.js';

export interface ReleaseWatcherOptions {
  /** Where verified release files are kept. */
  cacheDir: string;
  /** How often `releases.json` is read again, in ms; 0: only at start. */
  pollMs: number;
  /** Loads a verified release folder (`loadBuiltFeature` with the host's database and secrets). */
  load: (dir: string, featureId: string) => Promise<HostedFeature>;
  /** An operator must see it: a refused index, a release that failed to load. */
  warn: (message: string) => void;
  /** A release switch. */
  info: (message: string) => void;
}

/**
 * One feature served from signed releases: loads the active release at start, then reads
 * `releases.json` every `pollMs` and switches to a newly activated, verified release without a
 * restart. The host's feature map gets the new feature once it has loaded: calls in flight finish
 * on the old code (closed once their time limit has passed), the next ones run the new code. A
 * refused index or a release that fails to load leaves the previous one serving, the reason in
 * `/_health` (`release.refused`); before any release loaded, the feature stays unavailable (503).
 *
 * @example
 * const watcher = new ReleaseWatcher(source, options)
 * const feature = await watcher.start()
 * const host = createHost([feature]); watcher.watch(host.features)
 */
export class ReleaseWatcher {
  #source: ReleaseSource;
  #options: ReleaseWatcherOptions;
  #memory: ReleaseMemory = newReleaseMemory();
  #feature!: ReleasedFeature;
  #serving: { release: ReleaseEntry; seq: number } | null = null;
  #health: ReleaseHealth;
  #retiring = new Set<{ feature: HostedFeature; timer: NodeJS.Timeout }>();
  #timer: NodeJS.Timeout | null = null;
  #closed = false;
  /** The accepted-seq record was read: until then no index is accepted (a replay could be). */
  #recordRead = false;

  constructor(source: ReleaseSource, options: ReleaseWatcherOptions) {
    this.#source = source;
    this.#options = options;
    this.#health = { location: source.location, version: null, seq: null, checkedAt: null, refused: null };
  }

  /** The feature as served now. */
  get feature(): HostedFeature {
    return this.#feature;
  }

  /**
   * Reads and loads the active release; a refused one gives an unavailable feature (under the
   * configured feature id) with the reason. Never throws.
   */
  async start(): Promise<HostedFeature> {
    const id = this.#source.feature;
    let check: ReleaseCheck;
    try {
      check = await this.#check();
    } catch (error) {
      return this.#unavailable(`${this.#source.location} could not be checked: ${(error as Error).message}`);
    }
    this.#health.checkedAt = new Date().toISOString();
    if (check.kind === 'verified') {
      const loaded = await this.#load(check.dir, id);
      if ('feature' in loaded) {
        this.#serve(loaded.feature, check.release, check.index.seq);
        return this.#feature;
      }
      return this.#unavailable(`release ${check.release.version}: ${loaded.problem}`);
    }
    return this.#unavailable(check.kind === 'refused' ? check.reason : `${this.#source.location} could not be read`);
  }

  /** Starts polling; a switch replaces the entry of `features` (the host's map). */
  watch(features: Map<string, HostedFeature>): void {
    if (this.#options.pollMs <= 0 || this.#closed) return;
    const tick = async () => {
      try {
        await this.#poll(features);
      } catch (error) {
        this.#options.warn(`favn serve: reading ${this.#source.location} failed: ${(error as Error).message}`);
      }
      if (!this.#closed) this.#timer = setTimeout(() => void tick(), this.#options.pollMs).unref();
    };
    this.#timer = setTimeout(() => void tick(), this.#options.pollMs).unref();
  }

  /** Stops polling and frees the served feature and those still retiring. */
  close(): void {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    for (const retiring of this.#retiring) {
      clearTimeout(retiring.timer);
      retiring.feature.close?.();
    }
    this.#retiring.clear();
    this.#feature.close?.();
  }

  /** Reads the accepted-seq record (until it could be read once), then `releases.json`. */
  async #check(): Promise<ReleaseCheck> {
    if (!this.#recordRead) {
      let accepted;
      try {
        accepted = await readAcceptedSeq(this.#options.cacheDir, this.#source.location, this.#source.feature);
      } catch (error) {
        return { kind: 'refused', reason: (error as Error).message, feature: this.#source.feature };
      }
      this.#memory.acceptedSeq = accepted.seq;
      this.#memory.acceptedClaims = accepted.claimsSha256;
      this.#recordRead = true;
    }
    return checkReleases(this.#source, this.#options.cacheDir, this.#memory);
  }

  async #poll(features: Map<string, HostedFeature>): Promise<void> {
    const check = await this.#check();
    this.#health.checkedAt = new Date().toISOString();
    if (check.kind === 'unchanged') return;
    if (check.kind === 'refused') return this.#refuse(check.reason);
    const { index, release } = check;
    // checkReleases refused an index of another feature: this is the configured one.
    if (this.#serving && sameRelease(this.#serving.release, release)) {
      // Re-signed (another version published, a new expiry): nothing to switch.
      this.#serving.seq = index.seq;
      this.#health.seq = index.seq;
      this.#health.refused = null;
      return;
    }
    const loaded = await this.#load(check.dir, index.feature);
    if (!('feature' in loaded)) return this.#refuse(`release ${release.version}: ${loaded.problem}`);
    const previous = this.#feature;
    this.#serve(loaded.feature, release, index.seq);
    features.set(this.#source.feature, this.#feature);
    const from = previous.manifest.version ? ` from ${previous.manifest.version}` : '';
    this.#options.info(`favn serve: ${index.feature} switched${from} to ${release.version} (seq ${index.seq})`);
    this.#retire(previous);
  }

  async #load(dir: string, featureId: string): Promise<{ feature: HostedFeature } | { problem: string }> {
    let feature: HostedFeature;
    try {
      feature = await this.#options.load(dir, featureId);
    } catch (error) {
      return { problem: `it did not load: ${(error as Error).message}` };
    }
    const problem = feature.unavailableReason ?? feature.functions?.status().error ?? feature.handlersError?.() ?? null;
    if (problem === null) return { feature };
    feature.close?.();
    return { problem: `it did not load: ${problem}` };
  }

  #serve(feature: HostedFeature, release: ReleaseEntry, seq: number): void {
    this.#serving = { release, seq };
    Object.assign(this.#health, { version: release.version, seq, refused: null });
    this.#feature = Object.assign(feature, { release: () => ({ ...this.#health }) });
  }

  #unavailable(reason: string): HostedFeature {
    // Under the configured id: nothing an unverified index says names the feature.
    const id = this.#source.feature;
    const feature = hostedFeature({ id, raw: { id } } as FeatureManifest, null) as ReleasedFeature;
    feature.unavailableReason = reason;
    this.#health.refused = reason;
    feature.release = () => ({ ...this.#health });
    this.#options.warn(`favn serve: ${id} stays unloaded: ${reason}`);
    this.#feature = feature;
    return feature;
  }

  #refuse(reason: string): void {
    // A CDN that stays down gives the same reason at every poll: said once.
    const repeated = this.#health.refused === reason;
    this.#health.refused = reason;
    if (repeated) return;
    if (this.#serving) {
      this.#options.warn(`favn serve: ${this.#feature.id} keeps serving ${this.#serving.release.version}: ${reason}`);
      return;
    }
    // Nothing loaded yet: the calls' 503 says why.
    this.#feature.unavailableReason = reason;
    this.#options.warn(`favn serve: ${this.#feature.id} stays unloaded: ${reason}`);
  }

  /** Frees the replaced code once every call that may still run on it has hit its time limit. */
  #retire(feature: HostedFeature): void {
    const limits = feature.manifest.isolate;
    const graceMs = Math.max(feature.timeoutMs, limits?.actionTimeoutMs ?? 10_000, limits?.timeoutMs ?? 0) + 1000;
    const retiring = {
      feature,
      timer: setTimeout(() => {
        this.#retiring.delete(retiring);
        feature.close?.();
      }, graceMs).unref(),
    };
    this.#retiring.add(retiring);
  }
}

function sameRelease(a: ReleaseEntry, b: ReleaseEntry): boolean {
  return (
    a.version === b.version &&
    a.manifestSha256 === b.manifestSha256 &&
    a.serverFunctionsSha256 === b.serverFunctionsSha256 &&
    a.handlersSha256 === b.handlersSha256
  );
}
