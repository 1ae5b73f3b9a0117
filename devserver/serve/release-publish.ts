import { createPublicKey, randomUUID, type KeyObject } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, lstat, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { UsageError } from '../common/usage-error.js';
import { parseManifest, readManifest } from '../feature/manifest.js';
import { sha256Hex } from './releases.js';
import {
  ReleaseRefusal,
  signReleaseIndex,
  verifyReleaseIndex,
  type ReleaseEntry,
  type ReleaseIndex,
} from './release-signature.js';

/** The file name of the signed index in a releases folder. */
export const RELEASES_FILE = 'releases.json';

export interface PublishOptions {
  /** The feature repo (after `vite build`: its `dist-server/`). */
  root: string;
  /** The releases folder: `<out>/<version>/` and `<out>/releases.json`. */
  out: string;
  /** Default: `version` of the built `feature.json`. */
  version?: string;
  /** Make the new version the active one (the first version published always is). */
  activate: boolean;
  privateKey: KeyObject;
  expiresInSeconds?: number;
}

/** What a publish or an activation did. */
export interface PublishResult {
  feature: string;
  version: string;
  active: string;
  seq: number;
  dir: string | null;
}

/**
 * `favn release`: copies the built server files (runtime manifest, server module, isolate bundle)
 * into `<out>/<version>/`, never over an existing version, adds the entry with their sha256 to
 * `<out>/releases.json` and signs it again with a higher `seq`.
 *
 * @example
 * await publishRelease({ root: '.', out: 'releases', activate: true, privateKey })
 */
export async function publishRelease(options: PublishOptions): Promise<PublishResult> {
  const built = path.join(options.root, 'dist-server');
  const manifestFile = path.join(built, 'feature.json');
  if (!existsSync(manifestFile)) {
    throw new UsageError(`${built} has no feature.json: run "vite build" in the feature repo first`);
  }
  const manifest = readManifest(manifestFile, { runtime: true });
  const sf = manifest.serverFunctions;
  if (!sf?.module) throw new UsageError(`${manifestFile} has no serverFunctions.module: nothing to release`);
  const version = options.version ?? manifest.version;
  if (!version) throw new UsageError(`${manifestFile} has no "version": set it in feature.json or pass --version`);
  if (!/^[\w.+-]+$/.test(version) || version.startsWith('.')) {
    throw new UsageError(`--version ${JSON.stringify(version)} must be letters, digits, ".", "+", "-" or "_"`);
  }
  const previous = await readSignedIndex(options.out, options.privateKey);
  if (previous && previous.feature !== manifest.id) {
    throw new UsageError(`${options.out} holds releases of "${previous.feature}", not of "${manifest.id}"`);
  }
  const dir = path.join(options.out, version);
  if (existsSync(dir) || previous?.releases.some((r) => r.version === version)) {
    throw new UsageError(`${dir} exists: version ${version} is already published (versions are never overwritten)`);
  }
  const names = [sf.module, ...(sf.handlers ? [sf.handlers.bundle] : [])];
  for (const name of names) {
    if (!/^(\.\/)?[\w.-]+$/.test(name)) throw new UsageError(`${name} of ${manifestFile} is not a file next to it`);
  }
  // Only plain files are published: a symbolic link could carry any file of this machine along.
  for (const name of ['feature.json', ...names]) {
    const file = path.join(built, name);
    const info = await lstat(file).catch(() => null);
    if (info?.isSymbolicLink())
      throw new UsageError(`${file} is a symbolic link: favn release copies only plain files`);
  }
  // Write into a scratch folder and rename: a failed copy leaves no half version behind.
  const partial = `${dir}.partial-${randomUUID()}`;
  let entry: ReleaseEntry;
  try {
    await mkdir(partial, { recursive: true });
    for (const name of names) await copyFile(path.join(built, name), path.join(partial, name));
    const manifestText =
      options.version && options.version !== manifest.version
        ? `${JSON.stringify({ ...manifest.raw, version }, null, 2)}\n`
        : await readFile(manifestFile, 'utf8');
    await writeFile(path.join(partial, 'feature.json'), manifestText);
    entry = await describeRelease(partial, version);
    await rename(partial, dir);
  } catch (error) {
    await rm(partial, { recursive: true, force: true });
    throw error;
  }
  const index: ReleaseIndex = {
    feature: manifest.id,
    active: options.activate || !previous ? version : previous.active,
    seq: (previous?.seq ?? 0) + 1,
    releases: [...(previous?.releases ?? []), entry],
  };
  await writeIndex(options.out, index, options.privateKey, options.expiresInSeconds);
  return { feature: index.feature, version, active: index.active, seq: index.seq, dir };
}

/**
 * `favn release --activate <version>`: makes a published version the active one (a switch or a
 * rollback) after checking its files still match their digests, and signs with a higher `seq`.
 *
 * @example
 * await activateRelease({ out: 'releases', version: '1.0.0', privateKey })
 */
export async function activateRelease(options: {
  out: string;
  version: string;
  privateKey: KeyObject;
  expiresInSeconds?: number;
}): Promise<PublishResult> {
  const previous = await readSignedIndex(options.out, options.privateKey);
  if (!previous)
    throw new UsageError(`${path.join(options.out, RELEASES_FILE)} does not exist: publish a version first`);
  const entry = previous.releases.find((r) => r.version === options.version);
  if (!entry) {
    const known = previous.releases.map((r) => r.version).join(', ');
    throw new UsageError(`version ${options.version} is not published in ${options.out} (published: ${known})`);
  }
  const now = await describeRelease(path.join(options.out, options.version), options.version);
  if (JSON.stringify(now) !== JSON.stringify(entry)) {
    throw new UsageError(`the files of ${options.version} in ${options.out} changed since they were published`);
  }
  const index: ReleaseIndex = { ...previous, active: options.version, seq: previous.seq + 1 };
  await writeIndex(options.out, index, options.privateKey, options.expiresInSeconds);
  return { feature: index.feature, version: options.version, active: index.active, seq: index.seq, dir: null };
}

/** The release entry of a version folder: the digest of every file the host executes or trusts. */
async function describeRelease(dir: string, version: string): Promise<ReleaseEntry> {
  const manifestBytes = await readFile(path.join(dir, 'feature.json'));
  const manifest = parseManifest(manifestBytes.toString('utf8'), path.join(dir, 'feature.json'), { runtime: true });
  const sf = manifest.serverFunctions;
  const entry: ReleaseEntry = {
    version,
    manifest: `${version}/feature.json`,
    manifestSha256: sha256Hex(manifestBytes),
    serverFunctionsSha256: sha256Hex(await readFile(path.join(dir, sf?.module ?? 'server-functions.js'))),
  };
  if (sf?.handlers) entry.handlersSha256 = sha256Hex(await readFile(path.join(dir, sf.handlers.bundle)));
  return entry;
}

/** The index of `out`, checked against the key's public half; `null` when nothing is published. */
async function readSignedIndex(out: string, privateKey: KeyObject): Promise<ReleaseIndex | null> {
  const file = path.join(out, RELEASES_FILE);
  if (!existsSync(file)) return null;
  try {
    // An expired index may be extended: publishing signs it anew.
    return await verifyReleaseIndex(await readFile(file, 'utf8'), createPublicKey(privateKey), {
      ignoreExpiry: true,
    });
  } catch (error) {
    if (!(error instanceof ReleaseRefusal)) throw error;
    throw new UsageError(`${file} cannot be extended with this key: ${error.message}`);
  }
}

async function writeIndex(
  out: string,
  index: ReleaseIndex,
  privateKey: KeyObject,
  expiresInSeconds: number | undefined,
): Promise<void> {
  const signed = await signReleaseIndex(index, privateKey, { expiresInSeconds });
  const file = path.join(out, RELEASES_FILE);
  await mkdir(out, { recursive: true });
  const partial = `${file}.${randomUUID()}.partial`;
  await writeFile(partial, `${JSON.stringify(signed, null, 2)}\n`);
  await rename(partial, file);
}
