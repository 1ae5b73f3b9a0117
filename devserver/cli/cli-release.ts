import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { UsageError } from '../common/usage-error.js';
import { activateRelease, publishRelease, RELEASES_FILE } from '../serve/release-publish.js';
import { generateReleaseKeys, readReleaseKey } from '../serve/release-signature.js';

/** The environment variable that may hold the publisher's private key (PEM text). */
export const RELEASE_KEY_ENV = 'FAVN_RELEASE_KEY';

export interface ReleaseCliOptions {
  root: string;
  out: string;
  version?: string;
  /** `true`: publish and activate the new version; a version: only activate that one. */
  activate: boolean | string;
  key?: string;
  /** e.g. `30d`, `12h`, `3600s`. */
  expiresIn?: string;
}

/**
 * `favn release`: publishes the built feature as a signed release, or (`--activate <version>`)
 * switches the active one. The private key never reaches the output.
 */
export async function runRelease(options: ReleaseCliOptions): Promise<number> {
  const privateKey = readReleaseKey(privateKeySource(options.key), 'private');
  const expiresInSeconds = options.expiresIn === undefined ? undefined : parseDuration(options.expiresIn);
  const out = path.resolve(options.out);
  if (typeof options.activate === 'string') {
    const done = await activateRelease({ out, version: options.activate, privateKey, expiresInSeconds });
    process.stdout.write(
      `favn release: ${done.feature} ${done.active} is active (seq ${done.seq}), signed ${path.join(out, RELEASES_FILE)}\n`,
    );
    return 0;
  }
  const done = await publishRelease({
    root: path.resolve(options.root),
    out,
    version: options.version,
    activate: options.activate,
    privateKey,
    expiresInSeconds,
  });
  process.stdout.write(
    `favn release: ${done.feature} ${done.version} published to ${done.dir}; active: ${done.active} (seq ${done.seq})\n`,
  );
  return 0;
}

/**
 * `favn release keygen`: writes an Ed25519 key pair, `<name>.pem` (private, mode 0600) for the
 * publisher and `<name>.pub.pem` for the hosts' config. Never overwrites a key.
 */
export async function runReleaseKeygen(options: { out: string; name: string }): Promise<number> {
  const privateFile = path.resolve(options.out, `${options.name}.pem`);
  const publicFile = path.resolve(options.out, `${options.name}.pub.pem`);
  for (const file of [privateFile, publicFile]) {
    if (existsSync(file)) throw new UsageError(`${file} exists: a release key is never overwritten`);
  }
  const { privateKeyPem, publicKeyPem } = generateReleaseKeys();
  await mkdir(path.dirname(privateFile), { recursive: true });
  await writeFile(privateFile, privateKeyPem, { mode: 0o600, flag: 'wx' });
  await writeFile(publicFile, publicKeyPem, { flag: 'wx' });
  process.stdout.write(
    `favn release keygen: private key ${privateFile} (keep it secret: favn release --key, or ${RELEASE_KEY_ENV})\n` +
      `public key ${publicFile} (for "publicKey" in the favn serve config):\n${publicKeyPem}`,
  );
  return 0;
}

function privateKeySource(file: string | undefined): string {
  if (file) {
    if (!existsSync(file)) throw new UsageError(`--key ${file} does not exist`);
    return readFileSync(file, 'utf8');
  }
  const fromEnv = process.env[RELEASE_KEY_ENV];
  if (fromEnv) return fromEnv;
  throw new UsageError(
    `favn release needs the publisher's private key: --key <file> or ${RELEASE_KEY_ENV} (favn release keygen makes one)`,
  );
}

function parseDuration(text: string): number {
  const match = /^(\d+)([smhd])$/.exec(text);
  if (!match) throw new UsageError(`--expires-in ${text} must be a number and s, m, h or d (like 30d)`);
  const unit = { s: 1, m: 60, h: 3600, d: 86_400 }[match[2] as 's' | 'm' | 'h' | 'd'];
  return Number(match[1]) * unit;
}
