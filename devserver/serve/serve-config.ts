import type { KeyObject } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseAuthConfig, type AuthConfig } from '../auth/auth-config.js';
import type { CrossSiteOptions } from '../auth/csrf.js';
import { FEATURE_ID_PATTERN } from '../../runtime/protocol.js';
import { UsageError } from '../common/usage-error.js';
import { parseAllowedHosts, type AllowedHosts } from './allowed-hosts.js';
import { readReleaseKey } from './release-signature.js';

/** How often `favn serve` reads each `releases.json` again, unless `releasePollSeconds` says otherwise. */
export const DEFAULT_RELEASE_POLL_SECONDS = 5;

/** Where one served feature comes from. */
export type FeatureSource =
  /** A feature repo after `vite build` (`dist/` and `dist-server/`), or its `dist-server/` folder. */
  | { kind: 'built'; dir: string }
  /** A `feature.json` of an endpoint-mode feature (no build needed). */
  | { kind: 'manifest'; file: string }
  /**
   * A feature published as signed releases: `releases.json` by URL or path (remote module mode),
   * trusted only through its publisher's Ed25519 public key.
   */
  | { kind: 'releases'; location: string; feature: string; publicKey: KeyObject; allowRollback: boolean };

/** `favn.config.json` of `favn serve`, all optional. */
export interface ServeConfig {
  features: FeatureSource[];
  adminToken?: string;
  /** Where fetched releases are kept (default `.favn/releases`). */
  cacheDir?: string;
  /** How callers are authenticated (default mode `none`: anonymous). */
  auth: AuthConfig;
  /** Cross-site browser calls: `allowedOrigins`, `trustProxy`, `host`. */
  crossSite: CrossSiteOptions;
  /**
   * Host names this server answers to (DNS rebinding): `true` for any, else these besides
   * `localhost`, IP addresses, `--host` and `publicHost` (default: none more).
   */
  allowedHosts?: AllowedHosts;
  /** A `.env` file of secrets per feature id (`ctx.secrets`); `FAVN_SECRET_*` variables add to it. */
  secrets?: Record<string, string>;
  /** Seconds between two reads of each `releases.json` (default 5; 0: only at start). */
  releasePollSeconds?: number;
  /**
   * When built features load (import, migrate): `first-call` (default; the start only checks
   * their files) or `start` (a feature that fails to load stops the start).
   */
  load?: 'first-call' | 'start';
}

/**
 * Reads the serve config (if any) and adds the feature folders named on the command line.
 * Paths in the file are relative to the file.
 *
 * @example
 * readServeConfig('favn.config.json', ['../feature-a'])
 */
export function readServeConfig(file: string | undefined, dirs: readonly string[]): ServeConfig {
  const config: ServeConfig = {
    features: dirs.map((dir) => ({ kind: 'built', dir: path.resolve(dir) })),
    auth: { mode: 'none' },
    crossSite: {},
    allowedHosts: [],
    secrets: {},
  };
  if (!file) return config;
  const where = path.resolve(file);
  if (!existsSync(where)) throw new UsageError(`The serve config ${where} does not exist`);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(where, 'utf8'));
  } catch (error) {
    throw new UsageError(`${where} is not valid JSON: ${(error as Error).message}`);
  }
  const fail = (field: string, problem: string): never => {
    throw new UsageError(`${where}: "${field}" ${problem}`);
  };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    fail('(root)', 'must be an object like {"features": ["./my-feature"]}');
  const record = raw as Record<string, unknown>;
  const base = path.dirname(where);
  const publishers = readPublishers(record.publishers, base, fail);
  const features = record.features ?? [];
  if (!Array.isArray(features)) fail('features', 'must be an array');
  (features as unknown[]).forEach((entry, i) => {
    if (typeof entry === 'string') config.features.push({ kind: 'built', dir: path.resolve(base, entry) });
    else if (
      typeof entry === 'object' &&
      entry !== null &&
      typeof (entry as { manifest?: unknown }).manifest === 'string'
    ) {
      config.features.push({ kind: 'manifest', file: path.resolve(base, (entry as { manifest: string }).manifest) });
    } else if (
      typeof entry === 'object' &&
      entry !== null &&
      typeof (entry as { releases?: unknown }).releases === 'string'
    ) {
      config.features.push(
        readReleasesEntry(entry as Record<string, unknown>, `features[${i}]`, base, publishers, fail),
      );
    } else
      fail(
        `features[${i}]`,
        'must be a folder, {"manifest": "<feature.json>"} or {"releases": "<releases.json URL or path>"}',
      );
  });
  const releaseIds = config.features.flatMap((f, i) => (f.kind === 'releases' ? [[f.feature, i] as const] : []));
  for (const [id, i] of releaseIds) {
    if (releaseIds.some(([other, j]) => other === id && j < i))
      fail(`features[${i}].feature`, `"${id}" is listed twice`);
  }
  if (record.adminToken !== undefined) {
    if (typeof record.adminToken !== 'string' || record.adminToken.length < 16)
      fail('adminToken', 'must be a string of at least 16 characters');
    config.adminToken = record.adminToken as string;
  }
  if (record.cacheDir !== undefined) {
    if (typeof record.cacheDir !== 'string') fail('cacheDir', 'must be a path');
    config.cacheDir = path.resolve(base, record.cacheDir as string);
  }
  config.auth = parseAuthConfig(record.auth, { file: where });
  if (record.allowedOrigins !== undefined) {
    if (!Array.isArray(record.allowedOrigins) || !record.allowedOrigins.every((o) => typeof o === 'string'))
      fail('allowedOrigins', 'must be an array of origins like "https://portal.example.com"');
    config.crossSite.allowedOrigins = record.allowedOrigins as string[];
  }
  if (record.trustProxy !== undefined) {
    if (typeof record.trustProxy !== 'boolean') fail('trustProxy', 'must be true or false');
    config.crossSite.trustProxy = record.trustProxy as boolean;
  }
  if (record.publicHost !== undefined) {
    if (typeof record.publicHost !== 'string') fail('publicHost', 'must be a host name like "app.example.com"');
    config.crossSite.host = record.publicHost as string;
  }
  if (record.allowedHosts !== undefined) {
    config.allowedHosts = parseAllowedHosts(record.allowedHosts, `${where}: "allowedHosts"`);
  }
  if (record.secrets !== undefined) config.secrets = readSecretsField(record.secrets, base, fail);
  if (record.releasePollSeconds !== undefined) {
    const seconds = record.releasePollSeconds;
    if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds < 0)
      fail('releasePollSeconds', 'must be a number of seconds (0: read releases.json only at start)');
    config.releasePollSeconds = seconds as number;
  }
  if (record.load !== undefined) {
    if (record.load !== 'first-call' && record.load !== 'start')
      fail('load', 'must be "first-call" (load each feature when first called) or "start" (load all before listening)');
    config.load = record.load as 'first-call' | 'start';
  }
  return config;
}

/** `"secrets": {"feature-x": "./secrets/feature-x.env"}`: paths relative to the config file. */
function readSecretsField(
  value: unknown,
  base: string,
  fail: (field: string, problem: string) => never,
): Record<string, string> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    fail('secrets', 'must map feature ids to .env files, like {"feature-x": "./secrets/feature-x.env"}');
  }
  const files: Record<string, string> = {};
  for (const [featureId, file] of Object.entries(value as Record<string, unknown>)) {
    if (!FEATURE_ID_PATTERN.test(featureId)) {
      fail(`secrets.${featureId}`, 'is not a feature id (lower-case letters, digits and -)');
    }
    if (typeof file !== 'string' || !file) fail(`secrets.${featureId}`, 'must be the path of a .env file');
    files[featureId] = path.resolve(base, file as string);
  }
  return files;
}

type Fail = (field: string, problem: string) => never;

/**
 * `{"releases": "<url or path>", "feature": "<feature id>", "publicKey": "<PEM, JWK or key file>" |
 * "publisher": "<name>", "allowRollback"?}`
 */
function readReleasesEntry(
  entry: Record<string, unknown>,
  field: string,
  base: string,
  publishers: Map<string, KeyObject>,
  fail: Fail,
): FeatureSource {
  const location = entry.releases as string;
  // A key signs every feature of its publisher: the source names the one it serves.
  if (typeof entry.feature !== 'string' || !FEATURE_ID_PATTERN.test(entry.feature))
    fail(
      `${field}.feature`,
      'must be the id of the feature this releases.json serves (lower-case letters, digits and -): ' +
        'an index signed for another feature is refused',
    );
  let publicKey: KeyObject | undefined;
  if (entry.publisher !== undefined) {
    publicKey = publishers.get(String(entry.publisher));
    if (!publicKey)
      fail(`${field}.publisher`, `names no key of "publishers" (${[...publishers.keys()].join(', ') || 'none'})`);
  } else if (entry.publicKey !== undefined) {
    publicKey = readKeyField(entry.publicKey, base, `${field}.publicKey`, fail);
  } else {
    fail(
      field,
      'needs "publicKey" (or "publisher"): favn serve trusts a release only when its releases.json is signed by that key',
    );
  }
  if (entry.allowRollback !== undefined && typeof entry.allowRollback !== 'boolean')
    fail(`${field}.allowRollback`, 'must be true or false');
  return {
    kind: 'releases',
    location: /^(https?|file):/.test(location) ? location : path.resolve(base, location),
    feature: entry.feature as string,
    publicKey: publicKey as KeyObject,
    allowRollback: entry.allowRollback === true,
  };
}

/** `"publishers": {"team-a": "<PEM, JWK or key file>"}`: one key for every feature a team publishes. */
function readPublishers(value: unknown, base: string, fail: Fail): Map<string, KeyObject> {
  const keys = new Map<string, KeyObject>();
  if (value === undefined) return keys;
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    fail('publishers', 'must map publisher names to public keys, like {"team-a": "./keys/team-a.pub.pem"}');
  for (const [name, key] of Object.entries(value as Record<string, unknown>)) {
    keys.set(name, readKeyField(key, base, `publishers.${name}`, fail));
  }
  return keys;
}

/** A public key as PEM text, a JWK object, or the path of a file holding either. */
function readKeyField(value: unknown, base: string, field: string, fail: Fail): KeyObject {
  let source: string | object;
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) source = value;
  else if (typeof value === 'string' && value.trim().startsWith('-----BEGIN')) source = value;
  else if (typeof value === 'string' && value) {
    const file = path.resolve(base, value);
    if (!existsSync(file)) return fail(field, `is neither a PEM nor an existing key file (${file})`);
    source = readFileSync(file, 'utf8');
  } else return fail(field, 'must be an Ed25519 public key: PEM text, a JWK object, or the path of a .pem file');
  try {
    return readReleaseKey(source, 'public');
  } catch (error) {
    return fail(field, (error as Error).message);
  }
}
