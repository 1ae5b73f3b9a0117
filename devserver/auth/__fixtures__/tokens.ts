import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  base64url,
  exportJWK,
  exportSPKI,
  generateKeyPair,
  SignJWT,
  type CryptoKey,
  type JWK,
  type JWTPayload,
} from 'jose';

/** An HMAC secret of exactly 32 bytes, the HS256 minimum. */
export const SECRET = 'test-secret-0123456789abcdefghij';

/** A key pair for an asymmetric algorithm, with its SPKI PEM public key. */
export interface TestKeys {
  alg: string;
  publicKey: CryptoKey;
  privateKey: CryptoKey;
  pem: string;
}

export async function makeKeys(alg: 'RS256' | 'ES256' | 'ES384'): Promise<TestKeys> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  return { alg, publicKey, privateKey, pem: await exportSPKI(publicKey) };
}

/** Seconds since the epoch. */
export function now(): number {
  return Math.floor(Date.now() / 1000);
}

/**
 * Signs `claims` as a JWT. `exp` defaults to five minutes from now; pass `exp: null` to leave it out.
 */
export function sign(
  claims: Omit<JWTPayload, 'exp'> & { exp?: number | null },
  key: CryptoKey | Uint8Array,
  alg: string,
  header: { kid?: string } = {},
): Promise<string> {
  const { exp = now() + 300, ...rest } = claims;
  const jwt = new SignJWT(rest).setProtectedHeader({ alg, typ: 'JWT', ...header }).setIssuedAt();
  if (exp !== null) jwt.setExpirationTime(exp);
  return jwt.sign(key);
}

/** Signs with the shared test secret (HS256). */
export function signHs(claims: Omit<JWTPayload, 'exp'> & { exp?: number | null }, secret = SECRET): Promise<string> {
  return sign(claims, new TextEncoder().encode(secret), 'HS256');
}

/** An unsigned token (`alg: none`), built by hand since no library will sign one. */
export function unsignedToken(claims: JWTPayload): string {
  const part = (value: object) => base64url.encode(JSON.stringify(value));
  return `${part({ alg: 'none', typ: 'JWT' })}.${part({ exp: now() + 300, ...claims })}.`;
}

/** The public JWK of a key pair, as an issuer publishes it. */
export async function publicJwk(keys: TestKeys, kid?: string): Promise<JWK> {
  const jwk = await exportJWK(keys.publicKey);
  return { ...jwk, alg: keys.alg, use: 'sig', ...(kid ? { kid } : {}) };
}

/** A JWKS endpoint on 127.0.0.1 serving `body` (a key set, or any status to simulate an outage). */
export interface JwksServer {
  url: string;
  hits: () => number;
  close: () => Promise<void>;
}

export async function serveJwks(body: { keys: JWK[] } | { status: number }): Promise<JwksServer> {
  let hits = 0;
  const server: Server = createServer((_req, res) => {
    hits++;
    if ('status' in body) {
      res.writeHead(body.status).end('down');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    hits: () => hits,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
