import type { CryptoKey, JWTPayload, JWTVerifyGetKey, JWTVerifyOptions } from 'jose';
import { RequestError } from '../../runtime/request-error.js';
import { joseModule } from '../common/load-on-use.js';
import type { JwtAuthConfig } from './auth-config.js';
import { toAuthError } from './token-errors.js';

/** Verifies one token and returns its claims; throws the HTTP error to answer with. */
export type VerifyToken = (token: string) => Promise<JWTPayload>;

/** Longer tokens are refused before any parsing. Real access tokens stay far below it. */
export const MAX_TOKEN_LENGTH = 16 * 1024;

type Key = Uint8Array | JWTVerifyGetKey;

/**
 * A verifier for a parsed `jwt` config: signature against the one configured key source, `alg`
 * against an explicit allow-list (so `none` and algorithm confusion fail), then `exp` (required),
 * `nbf`, and `iss`/`aud` when configured.
 *
 * @example
 * const verify = createTokenVerifier(parseAuthConfig({ mode: 'jwt', jwksUrl }) as JwtAuthConfig)
 * const claims = await verify(token)
 */
export function createTokenVerifier(config: JwtAuthConfig): VerifyToken {
  const options = verifyOptions(config);
  const remoteKeys = config.jwksUrl !== undefined;
  let loadKey: (() => Promise<Key>) | undefined;
  return async function verifyToken(token) {
    if (token.length > MAX_TOKEN_LENGTH) throw RequestError.of('unauthorized', 'token too large');
    // jose loads with the first token, not with the host.
    const jose = await joseModule();
    loadKey ??= keyLoader(jose, config, options.algorithms ?? []);
    // Outside the try: a key that cannot be imported is a config bug, not the token's fault.
    const key = await loadKey();
    try {
      return await verifyWithAnyKey(jose, token, key, options);
    } catch (error) {
      throw toAuthError(error, remoteKeys, jose.errors);
    }
  };
}

type Jose = Awaited<ReturnType<typeof joseModule>>;

function verifyOptions(config: JwtAuthConfig): JWTVerifyOptions {
  const options: JWTVerifyOptions = {
    algorithms: config.algorithms ?? [],
    requiredClaims: ['exp'],
    clockTolerance: config.clockToleranceSec ?? 0,
  };
  if (config.issuer !== undefined) options.issuer = config.issuer;
  if (config.audience !== undefined) options.audience = config.audience;
  return options;
}

/** The verification key, made once: a secret's bytes, the remote key set, or one imported key per algorithm. */
function keyLoader(jose: Jose, config: JwtAuthConfig, algorithms: string[]): () => Promise<Key> {
  if (config.hs256Secret !== undefined) {
    const secret = new TextEncoder().encode(config.hs256Secret);
    return () => Promise.resolve(secret);
  }
  if (config.jwksUrl !== undefined) {
    const keySet = jose.createRemoteJWKSet(new URL(config.jwksUrl));
    return () => Promise.resolve(keySet);
  }
  const pem = config.publicKey;
  if (pem === undefined)
    throw new Error('The jwt auth config has no key source; parse it with parseAuthConfig first (this is a bug)');
  let imported: Promise<Key> | undefined;
  return () => (imported ??= importPerAlgorithm(jose, pem, algorithms));
}

async function importPerAlgorithm(jose: Jose, pem: string, algorithms: string[]): Promise<Key> {
  const keys = new Map<string, CryptoKey>();
  for (const alg of algorithms) keys.set(alg, await jose.importSPKI(pem, alg));
  // jose checks `alg` against the allow-list before asking for the key, so the lookup always hits.
  return (header) => {
    const key = keys.get(header.alg ?? '');
    if (!key) throw new jose.errors.JOSEAlgNotAllowed('"alg" (Algorithm) Header Parameter value not allowed');
    return key;
  };
}

/** A key set may hold several keys that fit a token without `kid` (during rotation): try each. */
async function verifyWithAnyKey(jose: Jose, token: string, key: Key, options: JWTVerifyOptions): Promise<JWTPayload> {
  const { errors, jwtVerify } = jose;
  try {
    // Two calls keep the overloads of jwtVerify apart.
    return (typeof key === 'function' ? await jwtVerify(token, key, options) : await jwtVerify(token, key, options))
      .payload;
  } catch (error) {
    if (!(error instanceof errors.JWKSMultipleMatchingKeys)) throw error;
    for await (const candidate of error) {
      try {
        return (await jwtVerify(token, candidate, options)).payload;
      } catch (inner) {
        if (!(inner instanceof errors.JWSSignatureVerificationFailed)) throw inner;
      }
    }
    throw new errors.JWSSignatureVerificationFailed();
  }
}
