import { createHash, type KeyObject } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseManifest } from '../feature/manifest.js';
import { writeAcceptedSeq } from './release-accepted.js';
import {
  canonicalJson,
  ReleaseRefusal,
  verifyReleaseIndex,
  type ReleaseEntry,
  type ReleaseIndex,
} from './release-signature.js';

/** A feature published as signed releases, as the serve config names it. */
export interface ReleaseSource {
  /** `releases.json` by URL (`https:`, `http:`, `file:`) or path. */
  location: string;
  /** The publisher's Ed25519 public key: the only thing that makes a release trusted. */
  publicKey: KeyObject;
  /** Accept an index with a lower `seq` than the last accepted one (a deliberate downgrade). */
  allowRollback?: boolean;
}

/** What the host remembers of one `releases.json` between two reads. */
export interface ReleaseMemory {
  etag: string | null;
  /** The text last read, accepted or refused: the same text again is not checked again. */
  text: string | null;
  /** `seq` of the last index accepted: an older one is a replay (rollback protection). */
  acceptedSeq: number;
  /** sha256 of the canonical claims of that index: the same `seq` must come with the same claims. */
  acceptedClaims: string | null;
}

/** The outcome of one read of `releases.json`. */
export type ReleaseCheck =
  | { kind: 'unchanged' }
  | { kind: 'verified'; index: ReleaseIndex; release: ReleaseEntry; dir: string }
  | { kind: 'refused'; reason: string; feature: string | null };

/**
 * Reads `releases.json` (a URL with `If-None-Match`, or a file), verifies its signature with the
 * source's public key and its `seq` against `memory`, then fetches the active release's runtime
 * manifest, server module and isolate bundle and checks each against the digests of the signed
 * entry. The verified files land in `cacheDir/<featureId>/<version>-<digest>/` for `loadBuiltFeature`.
 *
 * @example
 * const memory = newReleaseMemory()
 * const check = await checkReleases({ location: 'https://cdn.example.com/x/releases.json', publicKey }, '.favn/releases', memory)
 */
export async function checkReleases(
  source: ReleaseSource,
  cacheDir: string,
  memory: ReleaseMemory,
): Promise<ReleaseCheck> {
  const base = toUrl(source.location);
  let read: { text: string; etag: string | null } | null;
  try {
    read = await readIndex(base, memory.etag);
  } catch (error) {
    return { kind: 'refused', reason: `${source.location} cannot be read: ${(error as Error).message}`, feature: null };
  }
  if (read === null || read.text === memory.text) return { kind: 'unchanged' };
  memory.etag = read.etag;
  memory.text = read.text;
  try {
    const index = await verifyReleaseIndex(read.text, source.publicKey);
    const claims = sha256Hex(canonicalJson(index));
    if (index.seq < memory.acceptedSeq && !source.allowRollback) {
      throw new ReleaseRefusal(
        `seq ${index.seq} is older than the index this host accepted (seq ${memory.acceptedSeq}): a replayed ` +
          'older releases.json. Activate the version again with "favn release --activate", or set allowRollback',
        index.feature,
      );
    }
    if (index.seq === memory.acceptedSeq && claims !== memory.acceptedClaims) {
      throw new ReleaseRefusal(`seq ${index.seq} was already accepted with other contents`, index.feature);
    }
    const release = index.releases.find((r) => r.version === index.active);
    if (!release) throw new ReleaseRefusal(`the active release "${index.active}" is not in "releases"`, index.feature);
    const dir = await fetchReleaseFiles(index, release, base, cacheDir);
    memory.acceptedSeq = index.seq;
    memory.acceptedClaims = claims;
    await writeAcceptedSeq(cacheDir, source.location, { seq: index.seq, claimsSha256: claims });
    return { kind: 'verified', index, release, dir };
  } catch (error) {
    if (!(error instanceof ReleaseRefusal)) throw error;
    return { kind: 'refused', reason: `${source.location}: ${error.message}`, feature: error.claimedFeature };
  }
}

/** What `loadFeatures` gets for a releases source: a release is trusted only through `ReleaseWatcher`. */
export type FetchedRelease =
  { dir: string } | { unavailable: string; id: string | null; release: { version: string } | null };

/**
 * Without the publisher's public key no release is trusted: `favn serve` loads releases through
 * `ReleaseWatcher`, which has it; this answer keeps any other caller from loading one unchecked.
 *
 * @example
 * await fetchRelease('https://cdn.example.com/x/releases.json', '.favn/releases') // { unavailable: ... }
 */
export async function fetchRelease(location: string, _cacheDir: string): Promise<FetchedRelease> {
  return { unavailable: `${location}: no publicKey is configured for it`, id: null, release: null };
}

/** Memory of a `releases.json` not read yet. */
export function newReleaseMemory(): ReleaseMemory {
  return { etag: null, text: null, acceptedSeq: 0, acceptedClaims: null };
}

/** The sha256 (hex) of bytes, as release entries and manifests state it. */
export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

async function fetchReleaseFiles(
  index: ReleaseIndex,
  release: ReleaseEntry,
  base: URL,
  cacheDir: string,
): Promise<string> {
  const refuse = (problem: string): never => {
    throw new ReleaseRefusal(`release ${release.version}: ${problem}`, index.feature);
  };
  const fetchChecked = async (url: URL, expected: string, what: string) => {
    const bytes = await readBytes(url).catch((error: Error) => refuse(`${what} cannot be read: ${error.message}`));
    const digest = sha256Hex(bytes);
    if (digest !== expected) {
      refuse(`${url.href} does not match ${what} of the signed release (expected ${expected}, got ${digest})`);
    }
    return bytes;
  };
  const manifestUrl = new URL(release.manifest, base);
  const manifestBytes = await fetchChecked(manifestUrl, release.manifestSha256, 'manifestSha256');
  let manifest;
  try {
    manifest = parseManifest(manifestBytes.toString('utf8'), manifestUrl.href, { runtime: true });
  } catch (error) {
    return refuse((error as Error).message);
  }
  if (manifest.id !== index.feature) refuse(`its manifest is of "${manifest.id}", the index of "${index.feature}"`);
  const sf = manifest.serverFunctions;
  if (!sf?.module) return refuse('its manifest has no serverFunctions.module');
  const files = new Map<string, Buffer>([['feature.json', manifestBytes]]);
  files.set(
    plainName(sf.module, refuse),
    await fetchChecked(new URL(sf.module, manifestUrl), release.serverFunctionsSha256, 'serverFunctionsSha256'),
  );
  if (sf.handlers) {
    if (!release.handlersSha256)
      refuse(`its manifest names ${sf.handlers.bundle} but the signed release has no handlersSha256`);
    const bundleUrl = new URL(sf.handlers.bundle, manifestUrl);
    files.set(
      plainName(sf.handlers.bundle, refuse),
      await fetchChecked(bundleUrl, release.handlersSha256 as string, 'handlersSha256'),
    );
  }
  // One folder per content: a module URL once imported is never re-read, so new code needs a new path.
  const key = sha256Hex([release.manifestSha256, release.serverFunctionsSha256, release.handlersSha256].join(':'));
  const dir = path.join(cacheDir, index.feature, `${release.version.replace(/[^\w.-]/g, '_')}-${key.slice(0, 16)}`);
  const partial = `${dir}.partial-${process.pid}`;
  await rm(partial, { recursive: true, force: true });
  await mkdir(partial, { recursive: true });
  for (const [name, bytes] of files) await writeFile(path.join(partial, name), bytes);
  await rm(dir, { recursive: true, force: true });
  await rename(partial, dir);
  return dir;
}

/** Files of a release sit next to its manifest: a path elsewhere is refused. */
function plainName(file: string, refuse: (problem: string) => never): string {
  if (!/^(\.\/)?[\w.-]+$/.test(file) || file.includes('..')) refuse(`${file} is not a file next to its feature.json`);
  return file.replace(/^\.\//, '');
}

async function readIndex(url: URL, etag: string | null): Promise<{ text: string; etag: string | null } | null> {
  if (url.protocol === 'file:') return { text: await readFile(fileURLToPath(url), 'utf8'), etag: null };
  const res = await fetch(url, {
    headers: etag ? { 'if-none-match': etag } : {},
    signal: AbortSignal.timeout(30_000),
  });
  if (res.status === 304) return null;
  if (!res.ok) throw new Error(`GET ${url.href} answered ${res.status}`);
  return { text: await res.text(), etag: res.headers.get('etag') };
}

function toUrl(location: string): URL {
  return /^https?:\/\//.test(location) || location.startsWith('file:')
    ? new URL(location)
    : pathToFileURL(path.resolve(location));
}

async function readBytes(url: URL): Promise<Buffer> {
  if (url.protocol === 'file:') return readFile(fileURLToPath(url));
  const res = await fetch(url, { signal: AbortSignal.timeout(30_000) });
  if (!res.ok) throw new Error(`GET ${url.href} answered ${res.status}`);
  return Buffer.from(await res.arrayBuffer());
}
