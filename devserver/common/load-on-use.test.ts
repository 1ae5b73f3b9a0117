import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readdir, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const run = promisify(execFile);

/**
 * `pg`, `ws` and `jose` load at first use, not at start. An install that lacks them (a broken
 * `npm install`, a bundler that left them out) must still say what to do, at the moment it
 * matters, and never crash the host with a bare "Cannot find module".
 */
describe('an install of this package without pg, ws and jose', () => {
  let root: string;
  let pkg: string;

  beforeAll(async () => {
    // A copy of the built package whose node_modules holds every dependency but those three.
    root = await mkdtemp(path.join(tmpdir(), 'favn-missing-deps-'));
    pkg = path.join(root, 'node_modules', '@favn', 'vite-plugin-server-fns');
    await mkdir(path.join(pkg, 'node_modules'), { recursive: true });
    await cp(path.join(REPO, 'dist'), path.join(pkg, 'dist'), { recursive: true });
    await cp(path.join(REPO, 'package.json'), path.join(pkg, 'package.json'));
    for (const name of await readdir(path.join(REPO, 'node_modules'))) {
      if (['pg', 'ws', 'jose'].includes(name) || name.startsWith('.')) continue;
      await symlink(path.join(REPO, 'node_modules', name), path.join(pkg, 'node_modules', name));
    }
  });
  afterAll(() => rm(root, { recursive: true, force: true }));

  /** Runs `script` (an ES module) in a Node process inside the copy; resolves to what it printed. */
  async function inCopy(script: string): Promise<string> {
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], {
      cwd: root,
      env: { ...process.env, NODE_OPTIONS: '--no-node-snapshot' },
    });
    return stdout.trim();
  }

  /** The URL of a file of the copy's `dist/` (deep imports are outside the package's exports). */
  const built = (file: string) => JSON.stringify(pathToFileURL(path.join(pkg, 'dist', file)).href);

  /** What `call` (a statement awaited in a module that ran `imports`) threw, as `Class: message`. */
  function failureOf(imports: string, call: string): Promise<string> {
    return inCopy(`${imports}
      try {
        await ${call};
        console.log('no failure');
      } catch (error) {
        console.log(error.constructor.name + ': ' + error.message);
      }`);
  }

  /** The usage error that names the missing package and the fix, and nothing of Node's resolver. */
  function expectFix(out: string, missing: string): void {
    expect(out).toMatch(/^UsageError: /);
    expect(out).toContain(
      `The package "${missing}" that @favn/vite-plugin-server-fns depends on is not installed. Install the project again (npm install).`,
    );
    expect(out).not.toMatch(/Cannot find (module|package)|Require stack/);
  }

  it('live queries refuse to start, naming the fix, instead of failing at the first socket', async () => {
    const out = await failureOf(
      `import { createServer } from 'node:http';
       import { attachLiveSockets } from ${built('devserver/host/live-socket.js')};`,
      `attachLiveSockets(createServer(), () => new Response('x'))`,
    );
    expectFix(out, 'ws');
  });

  it('DATABASE_URL without pg: the first use fails with the fix, not "Cannot find module"', async () => {
    const out = await failureOf(
      `import { openPostgres } from ${built('devserver/data/postgres-client.js')};`,
      `openPostgres('postgres://127.0.0.1:9/none')`,
    );
    expectFix(out, 'pg');
  });

  it('jwt auth without jose: the first token fails with the fix', async () => {
    const out = await failureOf(
      `import { parseAuthConfig } from ${built('devserver/auth/auth-config.js')};
       import { createTokenVerifier } from ${built('devserver/auth/verify-token.js')};`,
      `createTokenVerifier(parseAuthConfig({ mode: 'jwt', hs256Secret: 'x'.repeat(32) }))('a.b.c')`,
    );
    expectFix(out, 'jose');
  });

  it('a host without DATABASE_URL, live sockets or tokens never needs any of them: the plugin and the host load', async () => {
    const out = await inCopy(`
      const plugin = await import('@favn/vite-plugin-server-fns');
      const { createHost } = await import(${built('devserver/host/host.js')});
      const host = createHost([], { dev: true });
      const res = await host.app.fetch(new Request('http://localhost/_health'));
      console.log(typeof plugin.default, res.status);`);
    expect(out).toBe('function 200');
  });
});
