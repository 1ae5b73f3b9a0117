import { createHash, randomUUID, type KeyObject } from 'node:crypto';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
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
  /** The feature id this source serves: an index signed for another feature is refused. */
  feature: string;
  /** The publisher's Ed25519 public key: the only thing that makes a release trusted. */
  publicKey: KeyObject;
  /** Accept an index with a lower `seq` than the last accepted one (a deliberate downgrade). */
  allowRollback?: boolean;
}

/** What the host remembers of one `releases.json` between two reads. */
export interface ReleaseMemory {
  etag: string | null;
  /**
   * The text last read with a definite outcome (accepted, or refused for what it says): the same
   * text again is not checked again. A text whose files could not be read is read again.
   */
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
  | { kind: 'refused'; reason: string; feature: string };

/** The largest `releases.json` read, in bytes. */
export const MAX_INDEX_BYTES = 1024 * 1024;
/** The largest release file read (manifest, server module, isolate bundle), in bytes. */
export const MAX_RELEASE_FILE_BYTES = 50 * 1024 * 1024;

/**
 * Reads `releases.json` (a URL with `If-None-Match`, or a file), verifies its signature with the
 * source's public key, its `feature` against the source's and its `seq` against `memory`, then
 * fetches the active release's runtime manifest, server module and isolate bundle and checks each
 * against the digests of the signed entry. The verified files land in
 * `cacheDir/<featureId>/<version>-<digest>/` for `loadBuiltFeature`. Never throws: any problem is
 * a refusal.
 *
 * @example
 * const memory = newReleaseMemory()
 * const check = await checkReleases({ location: 'https://cdn.example.com/x/releases.json', feature: 'feature-x', publicKey }, '.favn/releases', memory)
 */
export async function checkReleases(
  source: ReleaseSource,
  cacheDir: string,
  memory: ReleaseMemory,
): Promise<ReleaseCheck> {
  const refused = (problem: string): ReleaseCheck => ({
    kind: 'refused',
    reason: `${source.location}${problem}`,
    feature: source.feature,
  });
  let base: URL;
  let read: { text: string; etag: string | null } | null;
  try {
    base = toUrl(source.location);
    read = await readIndex(base, memory.etag);
  } catch (error) {
    return refused(` cannot be read: ${(error as Error).message}`);
  }
  if (read === null || read.text === memory.text) return { kind: 'unchanged' };
  const remember = () => {
    memory.etag = read.etag;
    memory.text = read.text;
  };
  try {
    const index = await verifyReleaseIndex(read.text, source.publicKey);
    if (index.feature !== source.feature) {
      throw new ReleaseRefusal(
        `the index is signed for "${index.feature}", this source serves "${source.feature}"`,
        index.feature,
      );
    }
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
    try {
      await writeAcceptedSeq(cacheDir, source.location, source.feature, { seq: index.seq, claimsSha256: claims });
    } catch (error) {
      throw new ReleaseRefusal(`its seq could not be recorded: ${(error as Error).message}`, index.feature, {
        retry: true,
      });
    }
    memory.acceptedSeq = index.seq;
    memory.acceptedClaims = claims;
    remember();
    return { kind: 'verified', index, release, dir };
  } catch (error) {
    if (!(error instanceof ReleaseRefusal)) return refused(` could not be checked: ${(error as Error).message}`);
    if (!error.retry) remember();
    return refused(`: ${error.message}`);
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
  // A file that cannot be read now (or not as signed yet) may be at the next poll.
  const retry = (problem: string): never => {
    throw new ReleaseRefusal(`release ${release.version}: ${problem}`, index.feature, { retry: true });
  };
  const fetchChecked = async (url: URL, expected: string, what: string) => {
    const bytes = await readBytes(url).catch((error: Error) => retry(`${what} cannot be read: ${error.message}`));
    if (sha256Hex(bytes) !== expected) retry(`${url.href} does not match ${what} of the signed release`);
    return bytes;
  };
  const manifestUrl = entryUrl(release.manifest, base, refuse);
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
  const partial = `${dir}.partial-${randomUUID()}`;
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

/**
 * The URL of a signed entry's manifest: a relative path (no `..`, not absolute, not a URL) in the
 * folder of `releases.json`, on the same origin.
 */
function entryUrl(file: string, base: URL, refuse: (problem: string) => never): URL {
  const inside = () =>
    refuse(`its manifest ${JSON.stringify(file)} is not a relative path in the folder of releases.json`);
  const segments = file.split('/');
  if (!/^[\w.+-]+(\/[\w.+-]+)*$/.test(file) || segments.some((s) => s === '.' || s === '..')) return inside();
  const url = new URL(file, base);
  const folder = new URL('.', base);
  if (url.protocol !== base.protocol || url.origin !== base.origin || !url.pathname.startsWith(folder.pathname)) {
    return inside();
  }
  return url;
}

async function readIndex(url: URL, etag: string | null): Promise<{ text: string; etag: string | null } | null> {
  const read = await readCapped(url, MAX_INDEX_BYTES, etag);
  return read && { text: read.bytes.toString('utf8'), etag: read.etag };
}

function toUrl(location: string): URL {
  return /^https?:\/\//.test(location) || location.startsWith('file:')
    ? new URL(location)
    : pathToFileURL(path.resolve(location));
}

async function readBytes(url: URL): Promise<Buffer> {
  return ((await readCapped(url, MAX_RELEASE_FILE_BYTES, null)) as { bytes: Buffer }).bytes;
}

/**
 * The bytes at `url`, at most `limit` of them: a larger body is refused, and not read past the
 * limit. Redirects are refused: the signed index names where its files are. `null`: 304.
 */
async function readCapped(
  url: URL,
  limit: number,
  etag: string | null,
): Promise<{ bytes: Buffer; etag: string | null } | null> {
  const tooLarge = () => new Error(`${url.href} is larger than ${limit} bytes`);
  if (url.protocol === 'file:') {
    // A local file is the operator's own: its size is checked before reading it.
    const file = fileURLToPath(url);
    if ((await stat(file)).size > limit) throw tooLarge();
    const bytes = await readFile(file);
    if (bytes.length > limit) throw tooLarge();
    return { bytes, etag: null };
  }
  let res: Response;
  try {
    res = await fetch(url, {
      headers: etag ? { 'if-none-match': etag } : {},
      redirect: 'error',
      signal: AbortSignal.timeout(30_000),
    });
  } catch (error) {
    const cause = (error as { cause?: { message?: string } }).cause?.message;
    throw new Error(`GET ${url.href} failed: ${cause ?? (error as Error).message}`);
  }
  if (res.status === 304) return null;
  if (!res.ok) {
    await res.body?.cancel();
    throw new Error(`GET ${url.href} answered ${res.status}`);
  }
  if (Number(res.headers.get('content-length') ?? 0) > limit) {
    await res.body?.cancel();
    throw tooLarge();
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = res.body?.getReader();
  for (let part = await reader?.read(); reader && part && !part.done; part = await reader.read()) {
    size += part.value.byteLength;
    if (size > limit) {
      await reader.cancel();
      throw tooLarge();
    }
    chunks.push(part.value);
  }
  return { bytes: Buffer.concat(chunks), etag: res.headers.get('etag') };
}
