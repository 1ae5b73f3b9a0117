import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../common/usage-error.js';
import { parseAuthConfig } from './auth-config.js';
import { makeKeys, SECRET } from './__fixtures__/tokens.js';

const rsa = await makeKeys('RS256');
const ec = await makeKeys('ES256');
const p384 = await makeKeys('ES384');

/** The message of the UsageError `parseAuthConfig(input)` throws. */
function usageError(input: unknown, where: { file?: string } = {}): string {
  try {
    parseAuthConfig(input, where);
  } catch (error) {
    if (error instanceof UsageError) return error.message;
    throw error;
  }
  throw new Error('expected a UsageError');
}

describe('parseAuthConfig: defaults', () => {
  it('reads no config as mode none', () => {
    expect(parseAuthConfig(undefined)).toEqual({ mode: 'none' });
    expect(parseAuthConfig({ mode: 'none' })).toEqual({ mode: 'none' });
    // A setting read from an unset environment variable is simply absent.
    expect(parseAuthConfig({ mode: 'none', jwksUrl: undefined })).toEqual({ mode: 'none' });
  });

  it('derives the algorithm allow-list from the key', () => {
    expect(parseAuthConfig({ mode: 'jwt', hs256Secret: SECRET })).toMatchObject({ algorithms: ['HS256'] });
    expect(parseAuthConfig({ mode: 'jwt', publicKey: rsa.pem })).toMatchObject({ algorithms: ['RS256'] });
    expect(parseAuthConfig({ mode: 'jwt', publicKey: ec.pem })).toMatchObject({ algorithms: ['ES256'] });
    expect(parseAuthConfig({ mode: 'jwt', publicKey: p384.pem })).toMatchObject({ algorithms: ['ES384'] });
    expect(parseAuthConfig({ mode: 'jwt', jwksUrl: 'https://id.example.com/certs' })).toMatchObject({
      algorithms: ['RS256', 'ES256'],
    });
  });

  it('accepts a PEM whose line breaks are written as \\n, as in an environment variable', () => {
    const oneLine = rsa.pem.trim().replace(/\n/g, '\\n');
    expect(parseAuthConfig({ mode: 'jwt', publicKey: oneLine })).toMatchObject({
      publicKey: rsa.pem.trim(),
      algorithms: ['RS256'],
    });
  });

  it('keeps every documented setting', () => {
    const config = {
      mode: 'jwt',
      jwksUrl: 'https://id.example.com/certs',
      algorithms: ['RS256'],
      issuer: 'https://id.example.com',
      audience: ['app', 'api'],
      cookie: 'access_token',
      required: true,
      groupRoles: { '/staff': ['editor'] },
      grants: { '*': ['user'] },
      tenantClaim: 'org',
      defaultTenantId: null,
      featureToggles: ['beta'],
      clockToleranceSec: 30,
    };
    expect(parseAuthConfig(config)).toEqual(config);
  });
});

describe('parseAuthConfig: usage errors name the field', () => {
  it('refuses an unknown mode and settings that belong to another mode', () => {
    expect(usageError({ mode: 'oidc' })).toBe('auth.mode must be "none" or "jwt" (got "oidc")');
    expect(usageError({ mode: 'none', jwksUrl: 'https://x' })).toBe(
      'auth.jwksUrl only applies to auth.mode "jwt" (auth.mode is "none")',
    );
    expect(usageError('jwt')).toMatch(/^auth must be an object/);
  });

  it('refuses misspelled settings', () => {
    expect(usageError({ mode: 'jwt', hs256Secret: SECRET, audiences: ['x'] })).toMatch(
      /^auth\.audiences is not a known setting \(known: mode, hs256Secret, /,
    );
  });

  it('wants exactly one key source', () => {
    expect(usageError({ mode: 'jwt' })).toBe(
      'auth.mode is "jwt": give exactly one of auth.hs256Secret, auth.publicKey, auth.jwksUrl (got none)',
    );
    expect(usageError({ mode: 'jwt', hs256Secret: SECRET, jwksUrl: 'https://x' })).toMatch(
      /\(got hs256Secret and jwksUrl\)$/,
    );
  });

  it('refuses a short secret without showing it', () => {
    const message = usageError({ mode: 'jwt', hs256Secret: 'short-secret' });
    expect(message).toMatch(/^auth\.hs256Secret is too short: HS256 needs at least 32 bytes \(got 12\)/);
    expect(message).not.toContain('short-secret');
    expect(usageError({ mode: 'jwt', hs256Secret: SECRET, algorithms: ['HS512'] })).toMatch(/needs at least 64 bytes/);
    expect(usageError({ mode: 'jwt', hs256Secret: 12345 })).toBe(
      'auth.hs256Secret must be a non-empty string (got number)',
    );
  });

  it('refuses a public key that is not an SPKI PEM public key, and says what to do', () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const privatePem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    expect(usageError({ mode: 'jwt', publicKey: privatePem })).toMatch(
      /^auth\.publicKey is a private key; give the public key/,
    );
    expect(usageError({ mode: 'jwt', publicKey: 'abc' })).toBe(
      'auth.publicKey must be a PEM public key starting with -----BEGIN PUBLIC KEY-----',
    );
    expect(
      usageError({ mode: 'jwt', publicKey: '-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----' }),
    ).toMatch(/^auth\.publicKey could not be read/);
    const { publicKey } = generateKeyPairSync('ed25519');
    const edPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    expect(usageError({ mode: 'jwt', publicKey: edPem })).toMatch(
      /^auth\.publicKey has key type ed25519; use an RSA \(RS256\) or EC P-256 \(ES256\) public key/,
    );
  });

  it('refuses algorithms that do not fit the key, and alg none', () => {
    expect(usageError({ mode: 'jwt', publicKey: rsa.pem, algorithms: ['HS256'] })).toBe(
      'auth.algorithms[0] "HS256" does not fit an RSA public key (allowed: RS256, RS384, RS512, PS256, PS384, PS512)',
    );
    expect(usageError({ mode: 'jwt', publicKey: ec.pem, algorithms: ['RS256'] })).toMatch(
      /^auth\.algorithms\[0\] "RS256" does not fit an EC P-256 public key/,
    );
    expect(usageError({ mode: 'jwt', jwksUrl: 'https://x.example/certs', algorithms: ['RS256', 'HS256'] })).toMatch(
      /^auth\.algorithms\[1\] "HS256" does not fit a JWKS URL/,
    );
    expect(usageError({ mode: 'jwt', hs256Secret: SECRET, algorithms: ['none'] })).toBe(
      'auth.algorithms[0] is "none": unsigned tokens are always refused',
    );
    expect(usageError({ mode: 'jwt', hs256Secret: SECRET, algorithms: [] })).toBe('auth.algorithms must not be empty');
  });

  it('checks the type of every other setting', () => {
    const base = { mode: 'jwt', hs256Secret: SECRET };
    expect(usageError({ mode: 'jwt', jwksUrl: 'ftp://id.example.com/certs' })).toBe(
      'auth.jwksUrl must be an http(s) URL (got "ftp://id.example.com/certs")',
    );
    expect(usageError({ mode: 'jwt', jwksUrl: 'not a url' })).toBe(
      'auth.jwksUrl must be an http(s) URL (got "not a url")',
    );
    expect(usageError({ ...base, issuer: [] })).toMatch(
      /^auth\.issuer must be a non-empty string or a non-empty array/,
    );
    expect(usageError({ ...base, audience: 7 })).toMatch(/^auth\.audience must be /);
    expect(usageError({ ...base, cookie: 'bad name;' })).toBe(
      'auth.cookie is not a valid cookie name (got "bad name;")',
    );
    expect(usageError({ ...base, required: 'yes' })).toBe('auth.required must be true or false (got "yes")');
    expect(usageError({ ...base, groupRoles: { admins: 'admin' } })).toBe(
      'auth.groupRoles["admins"] must be an array of non-empty strings (got "admin")',
    );
    expect(usageError({ ...base, grants: ['admin'] })).toMatch(
      /^auth\.grants must be an object mapping names to arrays of roles/,
    );
    expect(usageError({ ...base, tenantClaim: '' })).toBe('auth.tenantClaim must be a non-empty string (got "")');
    expect(usageError({ ...base, defaultTenantId: 3 })).toBe(
      'auth.defaultTenantId must be a non-empty string (got number 3)',
    );
    expect(usageError({ ...base, featureToggles: [1] })).toMatch(
      /^auth\.featureToggles must be an array of non-empty strings/,
    );
    expect(usageError({ ...base, clockToleranceSec: -1 })).toBe(
      'auth.clockToleranceSec must be a number >= 0 (got number -1)',
    );
  });

  it('carries the config file for the error report', () => {
    try {
      parseAuthConfig({ mode: 'x' }, { file: 'favn.config.json' });
    } catch (error) {
      expect(error).toBeInstanceOf(UsageError);
      expect((error as UsageError).file).toBe('favn.config.json');
    }
    expect.assertions(2);
  });
});
