import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { generateReleaseKeys } from './release-signature.js';
import { readServeConfig } from './serve-config.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'favn-serve-config-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const file = (content: unknown) => {
  const where = path.join(dir, `favn-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(where, JSON.stringify(content));
  return where;
};

const configWith = async (content: unknown) => {
  const file = path.join(dir, `favn-${Math.random().toString(36).slice(2)}.json`);
  await writeFile(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
};

describe('favn serve config', () => {
  it('resolves paths against the config file and reads auth and cross-site settings', async () => {
    const file = await configWith({
      features: ['./a', { manifest: 'ep/feature.json' }],
      allowedOrigins: ['https://portal.example.com'],
      trustProxy: true,
    });
    const config = readServeConfig(file, []);
    expect(config.features).toEqual([
      { kind: 'built', dir: path.join(dir, 'a') },
      { kind: 'manifest', file: path.join(dir, 'ep', 'feature.json') },
    ]);
    expect(config.auth).toEqual({ mode: 'none' });
    expect(config.crossSite).toEqual({ allowedOrigins: ['https://portal.example.com'], trustProxy: true });
  });

  it.each([
    ['{not json', /is not valid JSON/],
    [{ features: {} }, /"features" must be an array/],
    [
      { features: [42] },
      /"features\[0\]" must be a folder, \{"manifest": "<feature\.json>"\} or \{"releases": "<releases\.json URL or path>"\}/,
    ],
    [{ adminToken: 'short' }, /"adminToken" must be a string of at least 16 characters/],
    [{ trustProxy: 'yes' }, /"trustProxy" must be true or false/],
    [{ auth: { mode: 'magic' } }, /auth\.mode/],
    [{ allowedHosts: 'app.example.com' }, /"allowedHosts" must be true or a list of host names/],
    [
      { allowedHosts: ['https://app.example.com'] },
      /"allowedHosts"\[0\] must be a host name without scheme, port or path/,
    ],
    [{ secrets: ['./x.env'] }, /"secrets" must map feature ids to \.env files/],
    [{ secrets: { Feature_X: './x.env' } }, /"secrets\.Feature_X" is not a feature id/],
    [{ secrets: { 'feature-x': 42 } }, /"secrets\.feature-x" must be the path of a \.env file/],
  ])('refuses %j with a message naming the field', async (content, message) => {
    const file = await configWith(content);
    expect(() => readServeConfig(file, [])).toThrowError(message);
  });

  it('reads allowedHosts and the secrets files (relative to the config file)', async () => {
    const file = await configWith({
      allowedHosts: ['App.Example.com', '.example.org'],
      secrets: { 'feature-x': './secrets/x.env' },
    });
    const config = readServeConfig(file, []);
    expect(config.allowedHosts).toEqual(['app.example.com', '.example.org']);
    expect(config.secrets).toEqual({ 'feature-x': path.join(dir, 'secrets', 'x.env') });
    expect(readServeConfig(await configWith({ allowedHosts: true }), []).allowedHosts).toBe(true);
    expect(readServeConfig(undefined, []).allowedHosts).toEqual([]);
  });

  it('a missing config file is a usage error', () => {
    expect(() => readServeConfig(path.join(dir, 'nope.json'), [])).toThrowError(/does not exist/);
  });
});

describe('releases in the serve config', () => {
  it('reads the public key as PEM, a key file or a publisher, and allowRollback', async () => {
    const { publicKeyPem } = generateReleaseKeys();
    await writeFile(path.join(dir, 'team.pub.pem'), publicKeyPem);
    const file = await configWith({
      publishers: { team: './team.pub.pem' },
      releasePollSeconds: 0.5,
      features: [
        {
          releases: 'https://cdn.example.com/x/releases.json',
          feature: 'feature-x',
          publicKey: publicKeyPem,
          allowRollback: true,
        },
        { releases: 'y/releases.json', feature: 'feature-y', publisher: 'team' },
      ],
    });
    const config = readServeConfig(file, []);
    expect(config.releasePollSeconds).toBe(0.5);
    expect(config.load).toBeUndefined();
    expect(readServeConfig(await configWith({ load: 'start' }), []).load).toBe('start');
    expect(config.features.map((f) => f.kind === 'releases' && [f.location, f.feature, f.allowRollback])).toEqual([
      ['https://cdn.example.com/x/releases.json', 'feature-x', true],
      [path.join(dir, 'y', 'releases.json'), 'feature-y', false],
    ]);
    const keys = config.features.map((f) => f.kind === 'releases' && f.publicKey.export({ format: 'jwk' }).x);
    expect(keys[0]).toBe(keys[1]);
  });

  it.each([
    [
      { features: [{ releases: 'r.json', feature: 'feature-x' }] },
      /"features\[0\]" needs "publicKey" \(or "publisher"\)/,
    ],
    [
      { features: [{ releases: 'r.json', feature: 'feature-x', publicKey: 'missing.pem' }] },
      /neither a PEM nor an existing key file/,
    ],
    [
      { features: [{ releases: 'r.json', feature: 'feature-x', publisher: 'nobody' }] },
      /"features\[0\]\.publisher" names no key/,
    ],
    [
      { features: [{ releases: 'r.json', publisher: 'nobody' }] },
      /"features\[0\]\.feature" must be the id of the feature this releases\.json serves/,
    ],
    [
      { features: [{ releases: 'r.json', feature: 'Feature X' }] },
      /"features\[0\]\.feature" must be the id of the feature this releases\.json serves/,
    ],
    [{ releasePollSeconds: -1 }, /"releasePollSeconds" must be a number of seconds/],
    [{ load: 'lazy' }, /"load" must be "first-call" \(load each feature when first called\) or "start"/],
  ])('refuses %j', async (content, message) => {
    expect(() => readServeConfig(file(content), [])).toThrowError(message);
  });

  it('refuses two release sources of the same feature', async () => {
    const { publicKeyPem } = generateReleaseKeys();
    const config = await configWith({
      features: [
        { releases: 'a/releases.json', feature: 'feature-x', publicKey: publicKeyPem },
        { releases: 'b/releases.json', feature: 'feature-x', publicKey: publicKeyPem },
      ],
    });
    expect(() => readServeConfig(config, [])).toThrowError(/"features\[1\]\.feature" "feature-x" is listed twice/);
  });

  it('refuses a private key given as the public key', async () => {
    const { privateKeyPem } = generateReleaseKeys();
    const config = await configWith({
      features: [{ releases: 'r.json', feature: 'feature-x', publicKey: privateKeyPem }],
    });
    expect(() => readServeConfig(config, [])).toThrowError(/is a private key: give its public half/);
  });
});
