import { createPublicKey } from 'node:crypto';

/** What checks a token's signature: a shared secret, one public key (by type), or a remote key set. */
export type KeyKind = 'secret' | 'rsa' | 'ec-p256' | 'ec-p384' | 'ec-p521' | 'jwks';

const RSA = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'];
const EC = ['ES256', 'ES384', 'ES512'];

/**
 * The algorithms each kind of key may verify. A secret never verifies an asymmetric algorithm and a
 * public key never verifies an HMAC one: that split is what defeats algorithm confusion.
 */
export const ALLOWED_ALGORITHMS: Readonly<Record<KeyKind, readonly string[]>> = {
  secret: ['HS256', 'HS384', 'HS512'],
  rsa: RSA,
  'ec-p256': ['ES256'],
  'ec-p384': ['ES384'],
  'ec-p521': ['ES512'],
  jwks: [...RSA, ...EC],
};

/** The allow-list used when the config names none. */
export const DEFAULT_ALGORITHMS: Readonly<Record<KeyKind, readonly string[]>> = {
  secret: ['HS256'],
  rsa: ['RS256'],
  'ec-p256': ['ES256'],
  'ec-p384': ['ES384'],
  'ec-p521': ['ES512'],
  jwks: ['RS256', 'ES256'],
};

/** Shortest HMAC secret per algorithm, in bytes: at least the hash size (RFC 7518, section 3.2). */
export const MIN_SECRET_BYTES: Readonly<Record<string, number>> = { HS256: 32, HS384: 48, HS512: 64 };

const CURVES: Readonly<Record<string, KeyKind>> = { prime256v1: 'ec-p256', secp384r1: 'ec-p384', secp521r1: 'ec-p521' };

/**
 * A PEM public key as written in config: literal `\n` sequences (common in environment variables)
 * become line breaks.
 *
 * @example
 * normalizePem('-----BEGIN PUBLIC KEY-----\\nMFkw...\\n-----END PUBLIC KEY-----')
 */
export function normalizePem(pem: string): string {
  return pem.replace(/\\n/g, '\n').trim();
}

/**
 * The kind of an SPKI PEM public key. Throws an Error whose message completes the sentence
 * "auth.publicKey ..." when the text is not a usable public key.
 *
 * @example
 * publicKeyKind(await exportSPKI(publicKey)) // 'rsa'
 */
export function publicKeyKind(pem: string): KeyKind {
  if (!pem.includes('-----BEGIN PUBLIC KEY-----')) throw new Error(wrongPemReason(pem));
  let key;
  try {
    key = createPublicKey({ key: pem, format: 'pem' });
  } catch {
    throw new Error('could not be read as a PEM public key (-----BEGIN PUBLIC KEY----- ... -----END PUBLIC KEY-----)');
  }
  const type = key.asymmetricKeyType;
  if (type === 'rsa') return 'rsa';
  if (type === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve ?? '';
    const kind = CURVES[curve];
    if (kind) return kind;
    throw new Error(`is an EC key on curve ${curve || '(unknown)'}; use P-256 (ES256), P-384 or P-521`);
  }
  throw new Error(`has key type ${type ?? 'unknown'}; use an RSA (RS256) or EC P-256 (ES256) public key`);
}

function wrongPemReason(pem: string): string {
  if (pem.includes('PRIVATE KEY'))
    return 'is a private key; give the public key (-----BEGIN PUBLIC KEY-----) instead, and keep the private key out of the config';
  if (pem.includes('-----BEGIN RSA PUBLIC KEY-----'))
    return 'is a PKCS#1 RSA key; convert it to SPKI with `openssl rsa -RSAPublicKey_in -in key.pem -pubout`';
  if (pem.includes('-----BEGIN CERTIFICATE-----'))
    return 'is a certificate; extract its public key with `openssl x509 -pubkey -noout -in cert.pem`';
  return 'must be a PEM public key starting with -----BEGIN PUBLIC KEY-----';
}
