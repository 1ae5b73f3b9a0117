import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseManifest } from '../feature/manifest.js';
import { UsageError } from '../common/usage-error.js';

/** One entry of `releases.json`. */
export interface Release {
  version: string;
  /** The runtime manifest (`dist-server/feature.json`), relative to `releases.json`. */
  manifest: string;
  /** sha256 (hex) of the server module's bytes: the module is loaded only if they match. */
  serverFunctionsSha256: string;
}

/** `releases.json`: a feature's published releases and which one is active. */
export interface ReleasesFile {
  active: string;
  releases: Release[];
}

/** A release fetched into a local folder, or why it could not be. */
export type FetchedRelease =
  { dir: string; release: Release } | { unavailable: string; id: string | null; release: Release | null };

/**
 * Remote module mode: reads `releases.json` (a URL or a path), fetches the active release's
 * runtime manifest, server module and handler bundle, and checks the module's bytes against the
 * release's `serverFunctionsSha256`. The files land in `cacheDir/<featureId>/<sha256>/`, ready for
 * `loadBuiltFeature`; a mismatch is returned as the reason the feature stays unloaded.
 *
 * @example
 * const fetched = await fetchRelease('https://cdn.example.com/feature-x/releases.json', '.favn/releases')
 */
export async function fetchRelease(location: string, cacheDir: string): Promise<FetchedRelease> {
  const base = toUrl(location);
  const file = JSON.parse(await readText(base)) as ReleasesFile;
  if (typeof file !== 'object' || file === null || typeof file.active !== 'string' || !Array.isArray(file.releases)) {
    throw new UsageError(
      `${location}: releases.json must be {"active": "<version>", "releases": [{"version", "manifest", "serverFunctionsSha256"}]}`,
    );
  }
  const release = file.releases.find((r) => r?.version === file.active);
  if (!release) throw new UsageError(`${location}: the active release "${file.active}" is not in "releases"`);
  if (
    typeof release.manifest !== 'string' ||
    typeof release.serverFunctionsSha256 !== 'string' ||
    !/^[0-9a-f]{64}$/.test(release.serverFunctionsSha256)
  ) {
    throw new UsageError(
      `${location}: release "${release.version}" needs "manifest" and "serverFunctionsSha256" (64 hex digits)`,
    );
  }
  const manifestUrl = new URL(release.manifest, base);
  const manifestText = await readText(manifestUrl);
  const manifest = parseManifest(manifestText, manifestUrl.href, { runtime: true });
  const sf = manifest.serverFunctions;
  if (!sf?.module)
    return {
      unavailable: `release ${release.version} of ${location} has no serverFunctions.module`,
      id: manifest.id,
      release,
    };
  const moduleUrl = new URL(sf.module, manifestUrl);
  const moduleBytes = await readBytes(moduleUrl);
  const digest = createHash('sha256').update(moduleBytes).digest('hex');
  if (digest !== release.serverFunctionsSha256) {
    return {
      unavailable: `${moduleUrl.href} does not match serverFunctionsSha256 of the active release ${release.version} in ${location} (expected ${release.serverFunctionsSha256}, got ${digest})`,
      id: manifest.id,
      release,
    };
  }
  const dir = path.join(cacheDir, manifest.id, digest);
  await mkdir(dir, { recursive: true });
  const moduleName = path.basename(moduleUrl.pathname);
  await writeFile(path.join(dir, moduleName), moduleBytes);
  if (sf.handlers)
    await writeFile(path.join(dir, sf.handlers.bundle), await readBytes(new URL(sf.handlers.bundle, manifestUrl)));
  // The release's digest is the one that counts: the local manifest carries it.
  const raw = {
    ...manifest.raw,
    serverFunctions: { ...(manifest.raw.serverFunctions as object), module: moduleName, serverFunctionsSha256: digest },
  };
  await writeFile(path.join(dir, 'feature.json'), JSON.stringify(raw, null, 2));
  return { dir, release };
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

async function readText(url: URL): Promise<string> {
  return (await readBytes(url)).toString('utf8');
}
