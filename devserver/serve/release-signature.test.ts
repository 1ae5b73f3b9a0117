import { describe, expect, it } from 'vitest';
import {
  generateReleaseKeys,
  readReleaseKey,
  signReleaseIndex,
  verifyReleaseIndex,
  type ReleaseIndex,
} from './release-signature.js';

const publisher = generateReleaseKeys();
const privateKey = readReleaseKey(publisher.privateKeyPem, 'private');
const publicKey = readReleaseKey(publisher.publicKeyPem, 'public');
const digest = 'a'.repeat(64);
const index: ReleaseIndex = {
  feature: 'feature-x',
  active: '1.0.0',
  seq: 3,
  releases: [
    { version: '1.0.0', manifest: '1.0.0/feature.json', manifestSha256: digest, serverFunctionsSha256: digest },
  ],
};

describe('signed release index', () => {
  it('verifies what the publisher signed and returns the signed claims', async () => {
    const signed = await signReleaseIndex(index, privateKey);
    const verified = await verifyReleaseIndex(JSON.stringify(signed), publicKey);
    expect(verified).toMatchObject(index);
    expect(verified.iat).toBeTypeOf('number');
    expect(signed.signature.split('.')).toHaveLength(3);
    expect(JSON.parse(Buffer.from(signed.signature.split('.')[0]!, 'base64url').toString())).toEqual({
      alg: 'EdDSA',
      typ: 'favn-releases+jwt',
    });
  });

  it('refuses an unsigned index', async () => {
    await expect(verifyReleaseIndex(JSON.stringify({ payload: index }), publicKey)).rejects.toThrow(
      /releases\.json is not signed/,
    );
    await expect(verifyReleaseIndex(JSON.stringify(index), publicKey)).rejects.toThrow(/is not signed/);
  });

  it('refuses an index signed by another key', async () => {
    const other = readReleaseKey(generateReleaseKeys().privateKeyPem, 'private');
    const signed = await signReleaseIndex(index, other);
    await expect(verifyReleaseIndex(JSON.stringify(signed), publicKey)).rejects.toThrow(
      /signature does not verify with the configured publicKey/,
    );
  });

  it('refuses a readable index edited after signing, and a signed part changed', async () => {
    const signed = await signReleaseIndex(index, privateKey);
    const edited = { ...signed, payload: { ...signed.payload, active: '2.0.0' } };
    await expect(verifyReleaseIndex(JSON.stringify(edited), publicKey)).rejects.toThrow(
      /differs from the signed one \(edited after signing\)/,
    );
    const [header, , sig] = signed.signature.split('.');
    const forged = Buffer.from(JSON.stringify({ ...signed.payload, active: '2.0.0' })).toString('base64url');
    const swapped = { payload: edited.payload, signature: `${header}.${forged}.${sig}` };
    await expect(verifyReleaseIndex(JSON.stringify(swapped), publicKey)).rejects.toThrow(/does not verify/);
  });

  it('refuses an expired index and accepts it before expiry', async () => {
    const signed = await signReleaseIndex(index, privateKey, {
      expiresInSeconds: 60,
      now: new Date(Date.now() - 120_000),
    });
    await expect(verifyReleaseIndex(JSON.stringify(signed), publicKey)).rejects.toThrow(/the signed index expired at/);
    const fresh = await signReleaseIndex(index, privateKey, { expiresInSeconds: 60 });
    await expect(verifyReleaseIndex(JSON.stringify(fresh), publicKey)).resolves.toMatchObject({ seq: 3 });
  });

  it('refuses a signed index with a malformed release entry', async () => {
    const bad = { ...index, releases: [{ version: '1.0.0', manifest: 'x', manifestSha256: 'abc' }] } as never;
    const signed = await signReleaseIndex(bad, privateKey);
    await expect(verifyReleaseIndex(JSON.stringify(signed), publicKey)).rejects.toThrow(
      /has a release without version, manifest and sha256 digests/,
    );
  });

  it('reads keys as PEM or JWK, refuses other kinds without echoing the key', () => {
    const jwk = publicKey.export({ format: 'jwk' });
    expect(readReleaseKey(jwk, 'public').asymmetricKeyType).toBe('ed25519');
    expect(readReleaseKey(JSON.stringify(jwk), 'public').asymmetricKeyType).toBe('ed25519');
    expect(() => readReleaseKey(publisher.privateKeyPem, 'public')).toThrow(/is a private key: give its public half/);
    let message = '';
    try {
      readReleaseKey(`${publisher.privateKeyPem.slice(0, 60)}broken`, 'private');
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/is not a PKCS8 PEM/);
    expect(message).not.toContain(publisher.privateKeyPem.slice(28, 60));
  });

  it('refuses a readable copy nested deeper than an index can be, instead of overflowing the stack', async () => {
    const signed = await signReleaseIndex(index, privateKey);
    const deep = 200_000;
    const text = `{"signature":${JSON.stringify(signed.signature)},"payload":${'['.repeat(deep)}${']'.repeat(deep)}}`;
    await expect(verifyReleaseIndex(text, publicKey)).rejects.toThrow(
      /the index in releases\.json is nested deeper than 32 levels/,
    );
  });

  it('says releases.json is not valid JSON without quoting what was read', async () => {
    const text = '{"payload": {"feature": "feature-x"}, "signature": "eyJ-sensitive-bytes';
    const refusal = await verifyReleaseIndex(text, publicKey).catch((error: Error) => error);
    expect((refusal as Error).message).toBe('releases.json is not valid JSON');
  });

  it('never quotes the text of a broken JWK key in its error', () => {
    const jwk = JSON.stringify(publicKey.export({ format: 'jwk' }));
    const broken = `${jwk.slice(0, -1)},"note": "kept-out-of-logs"`;
    let message = '';
    try {
      readReleaseKey(broken, 'public');
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/is not an SPKI PEM .* or a JWK of an Ed25519 key/);
    expect(message).not.toContain('kept-out-of-logs');
    expect(message).not.toContain((publicKey.export({ format: 'jwk' }) as { x: string }).x);
  });
});
