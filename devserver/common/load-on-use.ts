import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/**
 * `pg`, loaded at its first use: a dev server without `DATABASE_URL` never loads it (27 ms of every
 * `vite` start before, ahead of the first call).
 *
 * @example
 * const pool = new (pgModule().Pool)({ connectionString })
 */
export function pgModule(): typeof import('pg') {
  return require('pg') as typeof import('pg');
}

/**
 * `ws`, loaded at the first WebSocket upgrade of live queries (27-31 ms of every start before).
 *
 * @example
 * const server = new (wsModule().WebSocketServer)({ noServer: true })
 */
export function wsModule(): typeof import('ws') {
  return require('ws') as typeof import('ws');
}
