import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import type { errors as JoseErrors } from 'jose';
import { FEATURE_ID_PATTERN } from '../../runtime/protocol.js';
import { joseModule } from '../common/load-on-use.js';

// `releases.json` is a signed JWT (JWS compact, EdDSA over Ed25519) plus a readable copy of its
// claims. Ed25519: small keys that fit in a config file, deterministic signatures (no nonce to get
// wrong), one algorithm with no parameters to choose; `jose` already verifies JWTs for auth.

/** The JWS `typ` of a release index: a token of another kind (an auth JWT) is never one. */
export const RELEASES_TOKEN_TYPE = 'favn-releases+jwt';
const ALGORITHM = 'EdDSA';

/** One published version of a feature; files are relative to `releases.json`. */
export interface ReleaseEntry {
  version: string;
  /** The runtime manifest (`<version>/feature.json`). */
  manifest: string;
  /** sha256 (hex) of the runtime manifest's bytes. */
  manifestSha256: string;
  /** sha256 (hex) of the server module's bytes. */
  serverFunctionsSha256: string;
  /** sha256 (hex) of the isolate bundle (`handlers.js`); absent when the feature has no handlers. */
  handlersSha256?: string;
}

/** What the publisher signs: the feature's releases, the active one, and a counter that only grows. */
export interface ReleaseIndex {
  feature: string;
  active: string;
  /** Raised by one on every signature: a host refuses an index older than one it accepted. */
  seq: number;
  releases: ReleaseEntry[];
  /** Signed at (seconds since 1970), and optionally the end of validity. */
  iat?: number;
  exp?: number;
}

/** `releases.json` on disk: the claims to read, and the JWS that alone is trusted. */
export interface SignedReleases {
  payload: ReleaseIndex;
  signature: string;
}

/** A release index the host refuses, and why (shown in `/_health`, `/_admin` and the 503). */
export class ReleaseRefusal extends Error {
  /** The feature the index claims to be for, unverified (to name the refused feature). */
  claimedFeature: string | null;
  /** Not a verdict on the signed index (a file that could not be read): read it again at the next poll. */
  retry: boolean;
  constructor(message: string, claimedFeature: string | null = null, options: { retry?: boolean } = {}) {
    super(message);
    this.name = 'ReleaseRefusal';
    this.claimedFeature = claimedFeature;
    this.retry = options.retry ?? false;
  }
}

/**
 * Signs a release index (without `iat`/`exp`: they are set here) with an Ed25519 private key.
 *
 * @example
 * const signed = await signReleaseIndex({ feature: 'feature-x', active: '1.0.0', seq: 1, releases }, key)
 * writeFileSync('releases.json', JSON.stringify(signed, null, 2))
 */
export async function signReleaseIndex(
  index: ReleaseIndex,
  privateKey: KeyObject,
  options: { expiresInSeconds?: number; now?: Date } = {},
): Promise<SignedReleases> {
  const { iat: _iat, exp: _exp, ...claims } = index;
  const iat = Math.floor((options.now ?? new Date()).getTime() / 1000);
  const payload: ReleaseIndex = { ...claims, iat };
  if (options.expiresInSeconds !== undefined) payload.exp = iat + options.expiresInSeconds;
  const { SignJWT } = await joseModule();
  const signature = await new SignJWT({ ...payload })
    .setProtectedHeader({ alg: ALGORITHM, typ: RELEASES_TOKEN_TYPE })
    .sign(privateKey);
  return { payload, signature };
}

/**
 * Checks `releases.json` text against the publisher's public key and returns the signed index.
 * Throws a `ReleaseRefusal` when it is unsigned, signed by another key, edited, expired or malformed.
 *
 * @example
 * const index = await verifyReleaseIndex(await (await fetch(url)).text(), publicKey)
 */
export async function verifyReleaseIndex(
  text: string,
  publicKey: KeyObject,
  options: { now?: Date; ignoreExpiry?: boolean } = {},
): Promise<ReleaseIndex> {
  let file: unknown;
  try {
    file = JSON.parse(text);
  } catch {
    // The parser's message quotes the bytes read: only say what is wrong.
    throw new ReleaseRefusal('releases.json is not valid JSON');
  }
  const record = (typeof file === 'object' && file !== null ? file : {}) as Record<string, unknown>;
  const claimed = claimedFeature(record.payload);
  if (typeof record.signature !== 'string' || !record.signature) {
    throw new ReleaseRefusal(
      'releases.json is not signed (no "signature"): publish it with "favn release", which signs it',
      claimed,
    );
  }
  let verified: Record<string, unknown>;
  const { errors, jwtVerify } = await joseModule();
  try {
    const result = await jwtVerify(record.signature, publicKey, {
      algorithms: [ALGORITHM],
      typ: RELEASES_TOKEN_TYPE,
      // Publishing extends an expired index: its expiry then does not matter.
      currentDate: options.ignoreExpiry ? new Date(0) : options.now,
    });
    verified = result.payload as Record<string, unknown>;
  } catch (error) {
    throw new ReleaseRefusal(describeJoseError(error, errors), claimed);
  }
  // Nesting deeper than any index needs is refused before comparing (and before a stack overflow).
  if (nestingDepth(record.payload) > MAX_DEPTH || nestingDepth(verified) > MAX_DEPTH) {
    throw new ReleaseRefusal(`the index in releases.json is nested deeper than ${MAX_DEPTH} levels`, claimed);
  }
  // Only the signed claims count; a readable copy that says something else was edited after signing.
  if (canonicalJson(verified) !== canonicalJson(record.payload)) {
    throw new ReleaseRefusal('the index in releases.json differs from the signed one (edited after signing)', claimed);
  }
  return checkIndexShape(verified, claimed);
}

/**
 * Reads an Ed25519 key given as PEM (PKCS8 private, SPKI public) or as a JWK (object or JSON text).
 *
 * @example
 * const key = readReleaseKey(readFileSync('release-key.pem', 'utf8'), 'private')
 */
export function readReleaseKey(source: string | object, kind: 'private' | 'public'): KeyObject {
  const text = typeof source === 'string' ? source.trim() : '';
  const secret = text.includes('PRIVATE KEY') || (typeof source === 'object' && 'd' in source) || /"d"\s*:/.test(text);
  // A private key where a public one belongs would still verify, and would sit in a config file.
  if (kind === 'public' && secret) throw new Error('the release public key is a private key: give its public half');
  // A parse error (of the JWK text or of the key) could quote the key: say only what was expected.
  let key: KeyObject;
  try {
    let input: Parameters<typeof createPublicKey>[0];
    if (typeof source === 'object') input = { key: source as never, format: 'jwk' };
    else if (text.startsWith('{')) input = { key: JSON.parse(text) as never, format: 'jwk' };
    else input = text;
    key = kind === 'private' ? createPrivateKey(input as never) : createPublicKey(input);
  } catch {
    const format = kind === 'private' ? 'a PKCS8 PEM ("BEGIN PRIVATE KEY")' : 'an SPKI PEM ("BEGIN PUBLIC KEY")';
    throw new Error(`the release ${kind} key is not ${format} or a JWK of an Ed25519 key`);
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new Error(`the release ${kind} key is ${key.asymmetricKeyType ?? 'not asymmetric'}, not Ed25519`);
  }
  return key;
}

/**
 * A new Ed25519 key pair as PEM: the private key for the publisher, the public one for hosts.
 *
 * @example
 * const { privateKeyPem, publicKeyPem } = generateReleaseKeys()
 */
export function generateReleaseKeys(): { privateKeyPem: string; publicKeyPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }) as string,
  };
}

/** How deep an index may nest: it needs 3 levels (index, releases, entry). */
const MAX_DEPTH = 32;

/** How deeply `value` nests objects and arrays, counted without recursion (so without a stack limit). */
export function nestingDepth(value: unknown): number {
  let deepest = 0;
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop() as [unknown, number];
    if (typeof node !== 'object' || node === null) continue;
    deepest = Math.max(deepest, depth + 1);
    if (deepest > MAX_DEPTH) return deepest;
    for (const child of Object.values(node)) stack.push([child, depth + 1]);
  }
  return deepest;
}

/** JSON with sorted keys: two values are the same claims exactly when these strings are equal. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    typeof v === 'object' && v !== null && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

function describeJoseError(error: unknown, errors: typeof JoseErrors): string {
  if (error instanceof errors.JWTExpired) {
    const exp = Number(error.payload.exp);
    return `the signed index expired at ${new Date(exp * 1000).toISOString()}: publish or activate again to re-sign it`;
  }
  if (error instanceof errors.JWSSignatureVerificationFailed) {
    return 'the signature does not verify with the configured publicKey (signed with another key, or the signed part was changed)';
  }
  if (error instanceof errors.JOSEAlgNotAllowed) return 'the signature is not EdDSA (Ed25519)';
  if (error instanceof errors.JWTClaimValidationFailed) return `the signed index is not valid: ${error.message}`;
  return `the signature is not a valid JWS: ${(error as Error).message}`;
}

function checkIndexShape(claims: Record<string, unknown>, claimed: string | null): ReleaseIndex {
  const fail = (problem: string): never => {
    throw new ReleaseRefusal(`the signed index ${problem}`, claimed);
  };
  const hex = (v: unknown) => typeof v === 'string' && /^[0-9a-f]{64}$/.test(v);
  if (typeof claims.feature !== 'string' || !FEATURE_ID_PATTERN.test(claims.feature)) fail('has no valid "feature"');
  if (typeof claims.active !== 'string') fail('has no "active" version');
  if (!Number.isSafeInteger(claims.seq) || (claims.seq as number) < 1) fail('has no "seq" (a positive integer)');
  if (!Array.isArray(claims.releases)) fail('has no "releases" list');
  for (const entry of claims.releases as unknown[]) {
    const e = (entry ?? {}) as Record<string, unknown>;
    const ok =
      typeof e.version === 'string' &&
      typeof e.manifest === 'string' &&
      hex(e.manifestSha256) &&
      hex(e.serverFunctionsSha256) &&
      (e.handlersSha256 === undefined || hex(e.handlersSha256));
    if (!ok) fail(`has a release without version, manifest and sha256 digests: ${JSON.stringify(entry)}`);
  }
  return claims as unknown as ReleaseIndex;
}

function claimedFeature(payload: unknown): string | null {
  const feature = (payload as { feature?: unknown } | null)?.feature;
  return typeof feature === 'string' && FEATURE_ID_PATTERN.test(feature) ? feature : null;
}
