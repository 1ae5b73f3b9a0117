/**
 * A throwaway PostgreSQL server for the live bench, as the test fixtures start one: Debian's server
 * binaries (`/usr/lib/postgresql/<version>/bin`), `initdb` into a temporary folder, the server on a
 * free loopback port with durability off, run as the `postgres` user when the bench runs as root.
 * `startPostgres()` resolves to `null` with the reason when no server binaries are installed.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { chown, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

const PG_ROOT = '/usr/lib/postgresql';
const START_TIMEOUT_MS = 30_000;

/**
 * @returns {Promise<{ url: string, stop: () => Promise<void> } | { skipped: string }>}
 */
export async function startPostgres() {
  const bin = findBinDir();
  if (!bin) return { skipped: `no PostgreSQL server binaries under ${PG_ROOT}/<version>/bin` };
  const asRoot = process.getuid?.() === 0;
  const prefix = [
    'setpriv',
    '--pdeathsig=SIGQUIT',
    ...(asRoot ? ['--reuid=postgres', '--regid=postgres', '--init-groups'] : []),
    '--',
  ];
  const dir = await mkdtemp(path.join(os.tmpdir(), 'favn-bench-pg-'));
  const data = path.join(dir, 'data');
  const sockets = path.join(dir, 'sock');
  await mkdir(sockets);
  if (asRoot) {
    const run = promisify(execFile);
    const [uid, gid] = await Promise.all([run('id', ['-u', 'postgres']), run('id', ['-g', 'postgres'])]);
    for (const d of [dir, sockets]) await chown(d, Number(uid.stdout), Number(gid.stdout));
  }
  const log = [];
  const cmd = (exe, args) => {
    const child = spawn(prefix[0], [...prefix.slice(1), path.join(bin, exe), ...args], {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.on('data', (d) => log.push(String(d)));
    child.stderr.on('data', (d) => log.push(String(d)));
    return child;
  };
  const fail = async (why, server) => {
    server?.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
    throw new Error(`${why}\n--- PostgreSQL log ---\n${log.join('').trim()}`);
  };
  const init = cmd('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '--no-locale', '-E', 'UTF8', '--no-sync']);
  const initCode = await new Promise((resolve) => init.on('close', resolve));
  if (initCode !== 0) return fail(`initdb failed (exit code ${initCode})`);
  const port = await freePort();
  const settings = ['listen_addresses=127.0.0.1', 'fsync=off', 'synchronous_commit=off', 'full_page_writes=off'];
  const server = cmd('postgres', [
    '-D',
    data,
    '-p',
    String(port),
    '-k',
    sockets,
    ...settings.flatMap((s) => ['-c', s]),
  ]);
  let exited = false;
  const exit = new Promise((resolve) => server.on('close', () => resolve((exited = true))));
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  for (const deadline = Date.now() + START_TIMEOUT_MS; !(await canConnect(url));) {
    if (exited) return fail('PostgreSQL exited during startup');
    if (Date.now() > deadline)
      return fail(`PostgreSQL did not accept connections within ${START_TIMEOUT_MS} ms`, server);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url,
    async stop() {
      if (!exited) {
        server.kill('SIGINT');
        const timer = setTimeout(() => server.kill('SIGKILL'), 10_000);
        await exit;
        clearTimeout(timer);
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The highest installed version. */
function findBinDir() {
  if (!existsSync(PG_ROOT)) return undefined;
  const versions = readdirSync(PG_ROOT)
    .filter((v) => /^\d+(\.\d+)?$/.test(v) && existsSync(path.join(PG_ROOT, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] === undefined ? undefined : path.join(PG_ROOT, versions[0], 'bin');
}

async function canConnect(url) {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('select 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}
