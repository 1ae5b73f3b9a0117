/**
 * The fuzzer's requests outside `/rpc/`: the static client (`favn serve`) or Vite's own paths
 * (`vite` dev), `/_health`, `/_admin` and `/_storage`, with traversal and encoding tricks aimed at
 * the feature's private files. They owe no JSON shape, only an answer below 500, in time, that
 * never contains the planted secret.
 */
import { CRUD, HANDLERS } from './fuzz-calls.js';
import { oneRequest, shorten } from './fuzz-expect.js';

/**
 * @typedef {import('./fuzz-cases.js').CaseContext & { assets: string[], handlersRoot: string }} PageContext
 */

const HOST_PAGES = [
  '/_health',
  `/_health/${HANDLERS}`,
  '/_health/nope',
  '/_health/__proto__',
  '/_health/constructor',
  '/_health/',
  '/_health/%ff',
  '/_admin',
  '/_admin/',
  '/_admin/calls',
  '/_admin?token=x',
  '/_admin/../_health',
  '/_adminx',
  '/_admin/login',
  '/_admin/logout',
  `/_storage/${CRUD}`,
  `/_storage/${HANDLERS}`,
  '/_storage/nope',
  '/_storage/__proto__',
  '/_storage/',
  '/_storage/%',
];

const SERVE_PAGES = [
  '/',
  '/favicon.ico',
  `/${HANDLERS}`,
  `/${HANDLERS}/`,
  `/${HANDLERS}/index.html`,
  `/${HANDLERS}/settings/profile`,
  `/${HANDLERS}/assets/missing.js`,
  `/${HANDLERS}/../../../../etc/passwd`,
  `/${HANDLERS}/%2e%2e/%2e%2e/feature.json`,
  `/${HANDLERS}/..%2f..%2fdist-server%2ffeature.json`,
  `/${HANDLERS}/..%5c..%5c.env.local`,
  `/${HANDLERS}/%2e%2e%2f.env.local`,
  `/${HANDLERS}/.env.local`,
  `/${HANDLERS}/../.env.local`,
  `/${HANDLERS}/%00`,
  `/${HANDLERS}/%`,
  `/${HANDLERS}/dist-server/feature.json`,
  `/${CRUD}/`,
  `/${CRUD}/x.js`,
  '/.env.local',
  '/.favn/db',
  '/dist-server/feature.json',
  `/${HANDLERS}//etc/passwd`,
  `/${HANDLERS}/assets/..%2f..%2f..%2f.env.local`,
];

const VITE_PAGES = [
  '/',
  '/index.html',
  '/src/rules.server.ts',
  '/src/lib/describe.ts',
  '/src/client-usage.ts',
  '/@vite/client',
  '/.env.local',
  '/.env.local?raw',
  '/feature.json',
  '/feature.json?raw',
  '/feature.json?import',
  '/.favn/db.lock',
  '/dist-server/feature.json',
  '/dist-server/server-functions.js?raw',
  '/src/rules.server.ts?raw',
  '/src/rules.server.ts?import&raw',
  '/src/%2e%2e/.env.local',
  '/%2e%2e/%2e%2e/etc/passwd',
  '/.env.local?url',
  '/..%2f.env.local',
  '/src/../.env.local',
  '/node_modules/.vite/deps/_metadata.json',
  '/@id/nope',
  '/@fs/etc/passwd',
  '/favicon.ico',
  '/src/rules.server.ts?v=1',
  '/server/schema.ts',
  '/server/schema.ts?raw',
];

/**
 * One request to a page or host endpoint outside `/rpc/`.
 *
 * @param {PageContext} ctx
 * @returns {import('./fuzz-expect.js').FuzzCase}
 */
export function pageRequest(ctx) {
  const { rng } = ctx;
  const own =
    ctx.hostName === 'serve' ? [...SERVE_PAGES, ...ctx.assets] : [...VITE_PAGES, ...vitePrivatePaths(ctx.handlersRoot)];
  let path = rng.chance(0.35) ? rng.pick(HOST_PAGES) : rng.pick(own);
  // Distinct query strings: each may be a new entry in a cache keyed by URL.
  if (rng.chance(0.25)) path += `${path.includes('?') ? '&' : '?'}v=${rng.text(rng.int(1, 40))}`;
  const method = rng.weighted([
    ['GET', 8],
    ['HEAD', 1],
    ['POST', 1],
    ['PUT', 1],
    ['DELETE', 0.5],
  ]);
  const headers = [];
  let body = null;
  if (method === 'POST' || method === 'PUT') {
    headers.push(['Content-Type', rng.pick(['application/json', 'text/plain', 'application/x-www-form-urlencoded'])]);
    body = rng.pick([
      'token=wrong',
      `token=${'x'.repeat(5000)}`,
      '{"theme":"dark","pageSize":20}',
      '{"theme":"blue"}',
      '{"note":"a\\u0000b","theme":"light","pageSize":1}',
      '{',
      '[]',
      'x'.repeat(rng.int(0, 50_000)),
    ]);
  }
  if (path.startsWith('/_admin') && rng.chance(0.5))
    headers.push(['Authorization', rng.pick(['Bearer wrong', 'Bearer ', 'Basic YTpi', `Bearer ${'x'.repeat(5000)}`])]);
  if (rng.chance(0.2))
    headers.push(['X-Favn-Dev-Identity', JSON.stringify({ sub: `u${rng.int(0, 9)}`, tenant_id: `t${rng.int(0, 9)}` })]);
  return oneRequest(
    'page',
    `${method} ${shorten(path, 70)}`,
    { method, target: path, host: ctx.hostHeader, headers, body },
    { kind: 'page' },
  );
}

/** Vite's file-system paths straight at the feature's private files (SPEC §11). */
function vitePrivatePaths(root) {
  const fs = `/@fs${root.startsWith('/') ? '' : '/'}${root}`;
  return [
    `${fs}/.env.local`,
    `${fs}/.env.local?raw`,
    `${fs}/feature.json?raw`,
    `${fs}/.favn/db.lock`,
    `${fs}/dist-server/server-functions.js?raw`,
    `${fs}/src/rules.server.ts?raw`,
  ];
}
