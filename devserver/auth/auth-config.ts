import { UsageError } from '../common/usage-error.js';
import { ConfigFields, describe, isPlainObject } from './config-fields.js';
import {
  ALLOWED_ALGORITHMS,
  DEFAULT_ALGORITHMS,
  MIN_SECRET_BYTES,
  normalizePem,
  publicKeyKind,
  type KeyKind,
} from './key-algorithms.js';

/** Auth mode `jwt`: every token is verified; a missing one is anonymous unless `required`. */
export interface JwtAuthConfig {
  mode: 'jwt';
  /** Shared HMAC secret (HS256 by default), at least 32 bytes. Exactly one of the three key sources. */
  hs256Secret?: string;
  /** SPKI PEM public key, RSA (RS256 by default) or EC P-256 (ES256). */
  publicKey?: string;
  /** URL of the issuer's JSON Web Key Set (RS256 and ES256 by default). */
  jwksUrl?: string;
  /** Accepted `alg` values; must fit the key kind. `none` is never accepted. */
  algorithms?: string[];
  /** Accepted `iss`; unchecked when absent. */
  issuer?: string | string[];
  /** Accepted `aud` (any of them); unchecked when absent. */
  audience?: string | string[];
  /** Name of a cookie carrying the token, read after the two headers. */
  cookie?: string;
  /** A request without a token is 401 when true; anonymous when false (default). */
  required?: boolean;
  /** Roles granted per entry of `claims.groups`. */
  groupRoles?: Record<string, string[]>;
  /** Roles granted per `sub`; the key `*` grants to everyone with a valid token, never to anonymous callers. */
  grants?: Record<string, string[]>;
  /** Claim holding the tenant id (default `tenant_id`). */
  tenantClaim?: string;
  /** Tenant id when the token names none (default null). */
  defaultTenantId?: string | null;
  /** `visibility.featureToggles` of every caller. */
  featureToggles?: string[];
  /** Seconds of clock skew allowed on `exp` and `nbf` (default 0). */
  clockToleranceSec?: number;
}

/** How the host establishes who is calling. */
export type AuthConfig = { mode: 'none' } | JwtAuthConfig;

const KEY_SOURCES = ['hs256Secret', 'publicKey', 'jwksUrl'] as const;
const JWT_FIELDS = [
  'mode',
  ...KEY_SOURCES,
  'algorithms',
  'issuer',
  'audience',
  'cookie',
  'required',
  'groupRoles',
  'grants',
  'tenantClaim',
  'defaultTenantId',
  'featureToggles',
  'clockToleranceSec',
] as const;
const COOKIE_NAME = /^[\w!#$%&'*.^`|~+-]+$/;

/**
 * Checks auth settings read from a config file or built in code, and fills in the defaults that
 * depend on the key (the algorithm allow-list). `undefined` means mode `none`. Mistakes throw a
 * `UsageError` naming the field, like `auth.jwksUrl must be an http(s) URL`.
 *
 * @example
 * parseAuthConfig({ mode: 'jwt', jwksUrl: 'https://id.example.com/certs', audience: 'app' })
 * // { mode: 'jwt', jwksUrl: '...', audience: 'app', algorithms: ['RS256', 'ES256'] }
 */
export function parseAuthConfig(input: unknown, where: { file?: string; field?: string } = {}): AuthConfig {
  const prefix = where.field ?? 'auth';
  const at = where.file === undefined ? {} : { file: where.file };
  if (input === undefined || input === null) return { mode: 'none' };
  if (!isPlainObject(input))
    throw new UsageError(`${prefix} must be an object like { "mode": "jwt", ... } (got ${describe(input)})`, at);
  const fields = new ConfigFields(input, prefix, where.file);
  const mode = input.mode;
  if (mode === 'none') {
    fields.onlyKnown(['mode'], () => `only applies to ${prefix}.mode "jwt" (${prefix}.mode is "none")`);
    return { mode: 'none' };
  }
  if (mode !== 'jwt') throw fields.fail('mode', `must be "none" or "jwt" (got ${describe(mode)})`);
  fields.onlyKnown(JWT_FIELDS, () => `is not a known setting (known: ${JWT_FIELDS.join(', ')})`);
  return parseJwt(fields);
}

function parseJwt(fields: ConfigFields): JwtAuthConfig {
  const config: JwtAuthConfig = { mode: 'jwt' };
  const kind = readKeySource(fields, config);
  config.algorithms = readAlgorithms(fields, kind);
  if (config.hs256Secret !== undefined) checkSecretLength(fields, config.hs256Secret, config.algorithms);
  assign(config, 'issuer', fields.oneOrMany('issuer'));
  assign(config, 'audience', fields.oneOrMany('audience'));
  const cookie = fields.string('cookie');
  if (cookie !== undefined && !COOKIE_NAME.test(cookie))
    throw fields.fail('cookie', `is not a valid cookie name (got ${describe(cookie)})`);
  assign(config, 'cookie', cookie);
  assign(config, 'required', fields.boolean('required'));
  assign(config, 'groupRoles', fields.listsByKey('groupRoles'));
  assign(config, 'grants', fields.listsByKey('grants'));
  assign(config, 'tenantClaim', fields.string('tenantClaim'));
  assign(config, 'defaultTenantId', readDefaultTenant(fields));
  assign(config, 'featureToggles', fields.stringList('featureToggles'));
  assign(config, 'clockToleranceSec', fields.number('clockToleranceSec', 0));
  return config;
}

/** Sets the one key source given and returns its kind. */
function readKeySource(fields: ConfigFields, config: JwtAuthConfig): KeyKind {
  const given = KEY_SOURCES.filter((field) => fields.has(field));
  if (given.length !== 1) {
    const got = given.length === 0 ? 'none' : given.join(' and ');
    throw fields.fail(
      'mode',
      `is "jwt": give exactly one of ${KEY_SOURCES.map((f) => fields.name(f)).join(', ')} (got ${got})`,
    );
  }
  const secret = fields.secret('hs256Secret');
  if (secret !== undefined) {
    config.hs256Secret = secret;
    return 'secret';
  }
  const pem = fields.string('publicKey');
  if (pem !== undefined) {
    config.publicKey = normalizePem(pem);
    try {
      return publicKeyKind(config.publicKey);
    } catch (error) {
      throw fields.fail('publicKey', (error as Error).message);
    }
  }
  config.jwksUrl = readJwksUrl(fields);
  return 'jwks';
}

function readJwksUrl(fields: ConfigFields): string {
  const raw = fields.string('jwksUrl') ?? '';
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw fields.fail('jwksUrl', `must be an http(s) URL (got ${describe(raw)})`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    throw fields.fail('jwksUrl', `must be an http(s) URL (got ${describe(raw)})`);
  return url.href;
}

function readAlgorithms(fields: ConfigFields, kind: KeyKind): string[] {
  const allowed = ALLOWED_ALGORITHMS[kind];
  const given = fields.stringList('algorithms', { nonEmpty: true });
  if (!given) return [...DEFAULT_ALGORITHMS[kind]];
  given.forEach((alg, i) => {
    if (alg.toLowerCase() === 'none')
      throw fields.fail(`algorithms[${i}]`, 'is "none": unsigned tokens are always refused');
    if (!allowed.includes(alg))
      throw fields.fail(
        `algorithms[${i}]`,
        `"${alg}" does not fit ${KIND_NAMES[kind]} (allowed: ${allowed.join(', ')})`,
      );
  });
  return [...new Set(given)];
}

const KIND_NAMES: Record<KeyKind, string> = {
  secret: 'an HMAC secret (auth.hs256Secret)',
  rsa: 'an RSA public key',
  'ec-p256': 'an EC P-256 public key',
  'ec-p384': 'an EC P-384 public key',
  'ec-p521': 'an EC P-521 public key',
  jwks: 'a JWKS URL (asymmetric keys only)',
};

function checkSecretLength(fields: ConfigFields, secret: string, algorithms: string[]): void {
  const bytes = new TextEncoder().encode(secret).length;
  const needed = Math.max(...algorithms.map((alg) => MIN_SECRET_BYTES[alg] ?? 32));
  if (bytes < needed) {
    throw fields.fail(
      'hs256Secret',
      `is too short: ${algorithms.join('/')} needs at least ${needed} bytes (got ${bytes}); generate one with \`openssl rand -base64 ${needed}\``,
    );
  }
}

function readDefaultTenant(fields: ConfigFields): string | null | undefined {
  return fields.isNull('defaultTenantId') ? null : fields.string('defaultTenantId');
}

function assign<K extends keyof JwtAuthConfig>(
  config: JwtAuthConfig,
  key: K,
  value: JwtAuthConfig[K] | undefined,
): void {
  if (value !== undefined) config[key] = value;
}
