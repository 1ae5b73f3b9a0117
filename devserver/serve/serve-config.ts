import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseAuthConfig, type AuthConfig } from '../auth/auth-config.js';
import type { CrossSiteOptions } from '../auth/csrf.js';
import { FEATURE_ID_PATTERN } from '../../runtime/protocol.js';
import { UsageError } from '../common/usage-error.js';
import { parseAllowedHosts, type AllowedHosts } from './allowed-hosts.js';

/** Where one served feature comes from. */
export type FeatureSource =
  /** A feature repo after `vite build` (`dist/` and `dist-server/`), or its `dist-server/` folder. */
  | { kind: 'built'; dir: string }
  /** A `feature.json` of an endpoint-mode feature (no build needed). */
  | { kind: 'manifest'; file: string }
  /** A feature published as releases: `releases.json` by URL or path (remote module mode). */
  | { kind: 'releases'; location: string };

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
      const location = (entry as { releases: string }).releases;
      config.features.push({
        kind: 'releases',
        location: /^(https?|file):/.test(location) ? location : path.resolve(base, location),
      });
    } else
      fail(
        `features[${i}]`,
        'must be a folder, {"manifest": "<feature.json>"} or {"releases": "<releases.json URL or path>"}',
      );
  });
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
