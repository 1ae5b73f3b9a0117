import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { activateRelease, publishRelease } from './release-publish.js';
import { generateReleaseKeys, readReleaseKey } from './release-signature.js';
import { checkReleases, newReleaseMemory } from './releases.js';

let dir: string;
const keys = generateReleaseKeys();
const privateKey = readReleaseKey(keys.privateKeyPem, 'private');
const publicKey = readReleaseKey(keys.publicKeyPem, 'public');

/** A built feature as `vite build` leaves it: `dist-server/feature.json` and the module it names. */
async function built(name: string, version: string, body: string): Promise<string> {
  const root = path.join(dir, name);
  await mkdir(path.join(root, 'dist-server'), { recursive: true });
  const manifest = { id: 'feature-x', version, serverFunctions: { module: 'server-functions.js', exports: ['hello'] } };
  await writeFile(path.join(root, 'dist-server', 'feature.json'), JSON.stringify(manifest));
  await writeFile(path.join(root, 'dist-server', 'server-functions.js'), body);
  return root;
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'favn-releases-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('releases.json from a path', () => {
  it('publishes, verifies, re-reads only on change, refuses a replay unless rollback is allowed', async () => {
    const out = path.join(dir, 'out');
    const location = path.join(out, 'releases.json');
    const cache = path.join(dir, 'cache');
    const first = await publishRelease({
      root: await built('v1', '1.0.0', 'export const hello = () => 1;'),
      out,
      activate: false,
      privateKey,
    });
    expect(first).toMatchObject({ version: '1.0.0', active: '1.0.0', seq: 1 });
    const seq1 = await readFile(location, 'utf8');

    const memory = newReleaseMemory();
    const check = await checkReleases({ location, publicKey }, cache, memory);
    expect(check).toMatchObject({ kind: 'verified', release: { version: '1.0.0' }, index: { seq: 1 } });
    if (check.kind !== 'verified') return;
    expect(await readFile(path.join(check.dir, 'server-functions.js'), 'utf8')).toBe('export const hello = () => 1;');
    expect(await checkReleases({ location, publicKey }, cache, memory)).toEqual({ kind: 'unchanged' });

    await publishRelease({
      root: await built('v2', '2.0.0', 'export const hello = () => 2;'),
      out,
      activate: true,
      privateKey,
    });
    expect(await checkReleases({ location, publicKey }, cache, memory)).toMatchObject({
      kind: 'verified',
      index: { active: '2.0.0', seq: 2 },
    });

    await writeFile(location, seq1);
    const replay = await checkReleases({ location, publicKey }, cache, memory);
    expect(replay).toMatchObject({ kind: 'refused', feature: 'feature-x' });
    expect(replay.kind === 'refused' && replay.reason).toMatch(
      /seq 1 is older than the index this host accepted \(seq 2\)/,
    );
    // The same text again is not checked again; another host with allowRollback accepts it.
    expect(await checkReleases({ location, publicKey }, cache, memory)).toEqual({ kind: 'unchanged' });
    const lenient = await checkReleases({ location, publicKey, allowRollback: true }, cache, {
      ...newReleaseMemory(),
      acceptedSeq: 2,
    });
    expect(lenient).toMatchObject({ kind: 'verified', index: { seq: 1, active: '1.0.0' } });
  });

  it('activates a published version only while its files match their digests', async () => {
    const out = path.join(dir, 'out-activate');
    await publishRelease({
      root: await built('a1', '1.0.0', 'export const hello = () => 1;'),
      out,
      activate: false,
      privateKey,
    });
    await publishRelease({
      root: await built('a2', '2.0.0', 'export const hello = () => 2;'),
      out,
      activate: true,
      privateKey,
    });
    expect(await activateRelease({ out, version: '1.0.0', privateKey })).toMatchObject({ active: '1.0.0', seq: 3 });
    await expect(activateRelease({ out, version: '3.0.0', privateKey })).rejects.toThrow(
      /version 3\.0\.0 is not published .*\(published: 1\.0\.0, 2\.0\.0\)/,
    );
    await writeFile(path.join(out, '2.0.0', 'server-functions.js'), 'export const hello = () => "changed";');
    await expect(activateRelease({ out, version: '2.0.0', privateKey })).rejects.toThrow(
      /the files of 2\.0\.0 .* changed since they were published/,
    );
  });
});
