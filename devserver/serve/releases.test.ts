import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readAcceptedSeq, writeAcceptedSeq } from './release-accepted.js';
import { activateRelease, publishRelease } from './release-publish.js';
import { generateReleaseKeys, readReleaseKey, signReleaseIndex } from './release-signature.js';
import { ReleaseWatcher } from './release-watcher.js';
import { startServe } from './serve.js';
import { readServeConfig } from './serve-config.js';
import { checkReleases, newReleaseMemory, type ReleaseCheck } from './releases.js';

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
    const check = await checkReleases({ location, feature: 'feature-x', publicKey }, cache, memory);
    expect(check).toMatchObject({ kind: 'verified', release: { version: '1.0.0' }, index: { seq: 1 } });
    if (check.kind !== 'verified') return;
    expect(await readFile(path.join(check.dir, 'server-functions.js'), 'utf8')).toBe('export const hello = () => 1;');
    expect(await checkReleases({ location, feature: 'feature-x', publicKey }, cache, memory)).toEqual({
      kind: 'unchanged',
    });

    await publishRelease({
      root: await built('v2', '2.0.0', 'export const hello = () => 2;'),
      out,
      activate: true,
      privateKey,
    });
    expect(await checkReleases({ location, feature: 'feature-x', publicKey }, cache, memory)).toMatchObject({
      kind: 'verified',
      index: { active: '2.0.0', seq: 2 },
    });

    await writeFile(location, seq1);
    const replay = await checkReleases({ location, feature: 'feature-x', publicKey }, cache, memory);
    expect(replay).toMatchObject({ kind: 'refused', feature: 'feature-x' });
    expect(replay.kind === 'refused' && replay.reason).toMatch(
      /seq 1 is older than the index this host accepted \(seq 2\)/,
    );
    // The same text again is not checked again; another host with allowRollback accepts it.
    expect(await checkReleases({ location, feature: 'feature-x', publicKey }, cache, memory)).toEqual({
      kind: 'unchanged',
    });
    const lenient = await checkReleases({ location, feature: 'feature-x', publicKey, allowRollback: true }, cache, {
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

/** A CDN on loopback: files of `root` with an ETag (304 on If-None-Match), or what `routes` answers. */
async function cdn(
  root: string,
  routes: Map<string, (res: import('node:http').ServerResponse) => void>,
): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    const name = new URL(req.url ?? '/', 'http://x').pathname;
    const route = routes.get(name);
    if (route) return route(res);
    readFile(path.join(root, name)).then(
      (body) => {
        const etag = `"${createHash('sha256').update(body).digest('hex')}"`;
        if (req.headers['if-none-match'] === etag) return res.writeHead(304, { etag }).end();
        res.writeHead(200, { etag }).end(body);
      },
      () => res.writeHead(404).end('not found'),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, server };
}

const refusal = (check: ReleaseCheck) => (check.kind === 'refused' ? check.reason : `not refused: ${check.kind}`);

describe('releases.json over HTTP', () => {
  let out: string;
  let server: { url: string; server: Server };
  const routes = new Map<string, (res: import('node:http').ServerResponse) => void>();
  const source = (name = 'releases.json') => ({ location: `${server.url}/${name}`, feature: 'feature-x', publicKey });

  beforeAll(async () => {
    out = path.join(dir, 'http-out');
    await publishRelease({
      root: await built('h1', '1.0.0', 'export const hello = () => 1;'),
      out,
      activate: true,
      privateKey,
    });
    server = await cdn(out, routes);
  });
  afterAll(async () => {
    server.server.closeAllConnections();
    await new Promise((resolve) => server.server.close(resolve));
  });

  it('reads a release file that failed once again at the next poll, though releases.json is unchanged (304)', async () => {
    routes.set('/1.0.0/server-functions.js', (res) => res.writeHead(503).end('busy'));
    const memory = newReleaseMemory();
    const cache = path.join(dir, 'cache-retry');
    expect(refusal(await checkReleases(source(), cache, memory))).toMatch(
      /serverFunctionsSha256 cannot be read: GET .*server-functions\.js answered 503/,
    );
    routes.delete('/1.0.0/server-functions.js');
    expect(await checkReleases(source(), cache, memory)).toMatchObject({ kind: 'verified', index: { seq: 1 } });
    expect(await checkReleases(source(), cache, memory)).toEqual({ kind: 'unchanged' });
  });

  it('refuses a releases.json larger than 1 MiB, by its content-length or while reading an endless body', async () => {
    routes.set('/big/releases.json', (res) => res.writeHead(200).end(Buffer.alloc(2 * 1024 * 1024, 32)));
    expect(refusal(await checkReleases(source('big/releases.json'), dir, newReleaseMemory()))).toMatch(
      /big\/releases\.json is larger than 1048576 bytes/,
    );
    let written = 0;
    routes.set('/endless/releases.json', (res) => {
      res.writeHead(200);
      const more = () => {
        while (written < 64 * 1024 * 1024 && res.write(Buffer.alloc(64 * 1024, 32))) written += 64 * 1024;
        if (written < 64 * 1024 * 1024) res.once('drain', more);
        else res.end();
      };
      res.on('error', () => {});
      more();
    });
    const endless = await checkReleases(source('endless/releases.json'), dir, newReleaseMemory());
    expect(refusal(endless)).toMatch(/endless\/releases\.json is larger than 1048576 bytes/);
    expect(written).toBeLessThan(32 * 1024 * 1024);
  });

  it('starts every release source at once: two slow CDNs delay the start by one wait, and the host serves', async () => {
    const waitMs = 2500;
    for (const name of ['/slow-a/releases.json', '/slow-b/releases.json']) {
      routes.set(name, (res) => void setTimeout(() => res.writeHead(503).end('busy'), waitMs));
    }
    const config = path.join(dir, 'slow.config.json');
    await writeFile(
      config,
      JSON.stringify({
        releasePollSeconds: 0,
        features: ['a', 'b'].map((x) => ({
          releases: `${server.url}/slow-${x}/releases.json`,
          feature: `feature-${x}`,
          publicKey: keys.publicKeyPem,
        })),
      }),
    );
    const started = Date.now();
    const host = await startServe(readServeConfig(config, []), {
      port: 0,
      host: '127.0.0.1',
      root: dir,
      env: {},
      rateLimiter: null,
      warn: () => {},
    });
    try {
      expect(Date.now() - started).toBeLessThan(2 * waitMs - 500);
      const res = await fetch(`${host.url}/rpc/feature-b/hello`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '[]',
      });
      expect(res.status).toBe(503);
      expect(await res.text()).toMatch(/slow-b\/releases\.json cannot be read: GET .* answered 503/);
    } finally {
      await host.close(0);
    }
  });

  it('refuses a redirect instead of following it', async () => {
    routes.set('/moved/releases.json', (res) => res.writeHead(302, { location: `${server.url}/releases.json` }).end());
    expect(refusal(await checkReleases(source('moved/releases.json'), dir, newReleaseMemory()))).toMatch(
      /moved\/releases\.json cannot be read: GET .* failed: .*redirect/,
    );
  });

  it('refuses a file that differs from its signed digest without echoing the digest it computed', async () => {
    const changed = 'export const hello = () => "changed";';
    routes.set('/1.0.0/server-functions.js', (res) => res.writeHead(200).end(changed));
    try {
      const reason = refusal(await checkReleases(source(), path.join(dir, 'cache-digest'), newReleaseMemory()));
      expect(reason).toMatch(/server-functions\.js does not match serverFunctionsSha256 of the signed release$/);
      expect(reason).not.toContain(createHash('sha256').update(changed).digest('hex'));
    } finally {
      routes.delete('/1.0.0/server-functions.js');
    }
  });

  it.each(['../elsewhere/feature.json', '/1.0.0/feature.json', 'http://127.0.0.1:1/1.0.0/feature.json', '1.0.0/./x'])(
    'refuses a signed entry whose manifest is %s (not a relative path in the folder of releases.json)',
    async (manifest) => {
      const index = JSON.parse(await readFile(path.join(out, 'releases.json'), 'utf8')).payload;
      index.releases[0].manifest = manifest;
      const signed = await signReleaseIndex(index, privateKey);
      routes.set('/crafted/releases.json', (res) => res.writeHead(200).end(JSON.stringify(signed)));
      expect(refusal(await checkReleases(source('crafted/releases.json'), dir, newReleaseMemory()))).toMatch(
        /its manifest ".*" is not a relative path in the folder of releases\.json/,
      );
    },
  );
});

describe('a release source is tied to its configured feature', () => {
  const watcher = (location: string, feature: string, cacheDir: string, warnings: string[] = []) =>
    new ReleaseWatcher(
      { location, feature, publicKey },
      {
        cacheDir,
        pollMs: 0,
        load: () => Promise.reject(new Error('nothing should load')),
        warn: (m) => warnings.push(m),
        info: () => {},
      },
    );

  it('refuses an index signed for another feature of the same publisher, served as unavailable under the configured id', async () => {
    const out = path.join(dir, 'tied-out');
    await publishRelease({
      root: await built('t1', '1.0.0', 'export const hello = () => 1;'),
      out,
      activate: true,
      privateKey,
    });
    const location = path.join(out, 'releases.json');
    const check = await checkReleases({ location, feature: 'feature-y', publicKey }, dir, newReleaseMemory());
    expect(check).toMatchObject({ kind: 'refused', feature: 'feature-y' });
    expect(refusal(check)).toMatch(/the index is signed for "feature-x", this source serves "feature-y"/);

    const feature = await watcher(location, 'feature-y', path.join(dir, 'cache-tied')).start();
    expect(feature.id).toBe('feature-y');
    expect(feature.unavailableReason).toMatch(/signed for "feature-x"/);
    // An unsigned index that claims a feature does not name the placeholder either.
    const unsigned = path.join(dir, 'unsigned.json');
    await writeFile(unsigned, JSON.stringify({ payload: { feature: 'feature-taken' } }));
    const placeholder = await watcher(unsigned, 'feature-z', path.join(dir, 'cache-tied')).start();
    expect([placeholder.id, placeholder.unavailableReason]).toEqual([
      'feature-z',
      `${unsigned}: releases.json is not signed (no "signature"): publish it with "favn release", which signs it`,
    ]);
  });

  it('starts as unavailable instead of crashing on a signed index with a deeply nested readable copy', async () => {
    const out = path.join(dir, 'tied-out');
    const signed = JSON.parse(await readFile(path.join(out, 'releases.json'), 'utf8'));
    const deep = `{"signature":${JSON.stringify(signed.signature)},"payload":${'['.repeat(100_000)}${']'.repeat(100_000)}}`;
    const location = path.join(dir, 'deep.json');
    await writeFile(location, deep);
    const feature = await watcher(location, 'feature-x', path.join(dir, 'cache-deep')).start();
    expect(feature.unavailableReason).toMatch(/nested deeper than 32 levels/);
  });
});

describe('the accepted seq record', () => {
  it('keeps every record when many are written at once', async () => {
    const cache = path.join(dir, 'cache-race');
    const ids = Array.from({ length: 20 }, (_, i) => i + 1);
    await Promise.all(
      ids.map((i) =>
        writeAcceptedSeq(cache, `https://cdn.example.com/${i}/releases.json`, 'feature-x', {
          seq: i,
          claimsSha256: null,
        }),
      ),
    );
    const read = await Promise.all(
      ids.map((i) => readAcceptedSeq(cache, `https://cdn.example.com/${i}/releases.json`, 'feature-x')),
    );
    expect(read.map((r) => r.seq)).toEqual(ids);
    expect((await readdir(cache)).filter((f) => f.includes('partial'))).toEqual([]);
  });

  it('is kept per URL and feature', async () => {
    const cache = path.join(dir, 'cache-per-feature');
    await writeAcceptedSeq(cache, 'https://cdn.example.com/releases.json', 'feature-x', { seq: 9, claimsSha256: null });
    expect((await readAcceptedSeq(cache, 'https://cdn.example.com/releases.json', 'feature-y')).seq).toBe(0);
    expect((await readAcceptedSeq(cache, 'https://cdn.example.com/releases.json', 'feature-x')).seq).toBe(9);
  });

  it('refuses every release while the record is corrupt, and a release whose seq cannot be recorded', async () => {
    const out = path.join(dir, 'record-out');
    await publishRelease({
      root: await built('r1', '1.0.0', 'export const hello = () => 1;'),
      out,
      activate: true,
      privateKey,
    });
    const location = path.join(out, 'releases.json');
    const corrupt = path.join(dir, 'cache-corrupt');
    await mkdir(corrupt, { recursive: true });
    await writeFile(path.join(corrupt, 'accepted-seq.json'), '{');
    await expect(readAcceptedSeq(corrupt, location, 'feature-x')).rejects.toThrow(
      /accepted-seq\.json cannot be read \(not valid JSON\).*until it is fixed or deleted/,
    );
    const feature = await new ReleaseWatcher(
      { location, feature: 'feature-x', publicKey },
      {
        cacheDir: corrupt,
        pollMs: 0,
        load: () => Promise.reject(new Error('not loaded')),
        warn: () => {},
        info: () => {},
      },
    ).start();
    expect([feature.id, feature.unavailableReason]).toEqual([
      'feature-x',
      expect.stringMatching(/accepted-seq\.json cannot be read \(not valid JSON\)/),
    ]);

    const unwritable = path.join(dir, 'cache-unwritable');
    await mkdir(path.join(unwritable, 'accepted-seq.json'), { recursive: true });
    const memory = newReleaseMemory();
    const check = await checkReleases({ location, feature: 'feature-x', publicKey }, unwritable, memory);
    expect(refusal(check)).toMatch(/its seq could not be recorded: .*accepted-seq\.json cannot be read/);
    expect(memory.acceptedSeq).toBe(0);
  });
});

describe('favn release copies plain files only', () => {
  it('refuses a symbolic link among the built files and leaves no partial folder behind', async () => {
    const root = await built('link', '1.0.0', 'export const hello = () => 1;');
    const secret = path.join(dir, 'outside.txt');
    await writeFile(secret, 'not part of the release');
    await rm(path.join(root, 'dist-server', 'server-functions.js'));
    await symlink(secret, path.join(root, 'dist-server', 'server-functions.js'));
    const out = path.join(dir, 'link-out');
    await expect(publishRelease({ root, out, activate: true, privateKey })).rejects.toThrow(
      /server-functions\.js is a symbolic link: favn release copies only plain files/,
    );
    expect(await readdir(out).catch(() => [])).toEqual([]);
  });

  it('removes the partial version folder when a copy fails', async () => {
    const root = await built('missing', '1.0.0', 'export const hello = () => 1;');
    await rm(path.join(root, 'dist-server', 'server-functions.js'));
    const out = path.join(dir, 'missing-out');
    await expect(publishRelease({ root, out, activate: true, privateKey })).rejects.toThrow(/ENOENT/);
    expect(await readdir(out)).toEqual([]);
  });
});
