import { createRequire } from 'node:module';
import { UsageError } from './usage-error.js';

const require = createRequire(import.meta.url);

/**
 * `pg`, loaded at its first use: a dev server without `DATABASE_URL` never loads it (27 ms of every
 * `vite` start before, ahead of the first call).
 *
 * @example
 * const pool = new (pgModule().Pool)({ connectionString })
 */
export function pgModule(): typeof import('pg') {
  return load('pg') as typeof import('pg');
}

/**
 * `ws`, loaded at the first WebSocket upgrade of live queries (27-31 ms of every start before).
 *
 * @example
 * const server = new (wsModule().WebSocketServer)({ noServer: true })
 */
export function wsModule(): typeof import('ws') {
  return load('ws') as typeof import('ws');
}

/**
 * Fails now, without loading it, when `name` is not installed: a broken install shows at start,
 * not at its first use.
 *
 * @example
 * ensureInstalled('ws')
 */
export function ensureInstalled(name: 'pg' | 'ws'): void {
  try {
    require.resolve(name);
  } catch (error) {
    throw notInstalled(name, error);
  }
}

let jose: Promise<typeof import('jose')> | undefined;

/**
 * `jose`, loaded at the first token to verify or release index to sign or check: a host without
 * `jwt` auth never loads it (35-50 ms of every start before, ahead of the first call).
 *
 * @example
 * const { jwtVerify } = await joseModule()
 */
export function joseModule(): Promise<typeof import('jose')> {
  jose ??= import('jose').catch((error: unknown) => {
    jose = undefined;
    throw notInstalled('jose', error);
  });
  return jose;
}

function load(name: 'pg' | 'ws'): unknown {
  try {
    return require(name);
  } catch (error) {
    throw notInstalled(name, error);
  }
}

function notInstalled(name: string, error: unknown): Error {
  const code = (error as NodeJS.ErrnoException)?.code;
  if (code !== 'MODULE_NOT_FOUND' && code !== 'ERR_MODULE_NOT_FOUND') return error as Error;
  return new UsageError(
    `The package "${name}" that @favn/vite-plugin-server-fns depends on is not installed. ` +
      'Install the project again (npm install).',
  );
}
