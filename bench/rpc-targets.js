/**
 * The three servers the RPC bench compares, each started on 127.0.0.1 with a free port:
 * `hono` (bare Hono doing the same JSON work), `host` (the project's host), `vite` (the host
 * mounted in the Vite dev server by the plugin, serving `fixture-rpc/`).
 */
import { fileURLToPath } from 'node:url';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { createHost, FeatureRuntime, parseManifest } from '../dist/devserver/index.js';

/** Path every target serves. */
export const RPC_PATH = '/rpc/feature-bench/echo';
/** Body of every request. */
export const RPC_BODY = JSON.stringify({ args: [{ n: 1, s: 'hello' }] });
/** Body every target answers with. */
export const RPC_RESPONSE = JSON.stringify({ echo: { n: 1, s: 'hello' } });

const HOSTNAME = '127.0.0.1';
const FIXTURE_DIR = fileURLToPath(new URL('./fixture-rpc/', import.meta.url));

/** @typedef {{ port: number, close: () => Promise<void> }} Running */

/** @type {Record<string, () => Promise<Running>>} */
export const targets = {
  hono: () => serveFetch(bareHonoApp().fetch),
  host: async () => serveFetch((await benchHost()).app.fetch),
  vite: startVite,
};

/** Bare Hono with the route shape and JSON work of the host's trivial function. */
function bareHonoApp() {
  const app = new Hono();
  app.post('/rpc/:featureId/:fnName', async (c) => {
    const { args } = await c.req.json();
    return c.json({ echo: args[0] });
  });
  return app;
}

/** The project's host serving one in-process module with `echo`. */
async function benchHost() {
  const manifest = parseManifest(
    JSON.stringify({ id: 'feature-bench', serverFunctions: { module: 'server-functions.js', exports: ['echo'] } }),
    'feature.json',
  );
  const echo = async (ctx, value) => ({ echo: value });
  const runtime = new FeatureRuntime(manifest, {
    modules: () => [{ file: 'bench.server.js', exportNames: ['echo'], load: () => ({ echo }) }],
  });
  await runtime.load();
  return createHost([runtime.feature], { dev: false, logCall: null });
}

/**
 * Serves a fetch handler with `@hono/node-server`.
 *
 * @param {(request: Request) => Response | Promise<Response>} fetch
 * @returns {Promise<Running>}
 */
function serveFetch(fetch) {
  return new Promise((resolve, reject) => {
    const server = serve({ fetch, port: 0, hostname: HOSTNAME }, (info) => {
      resolve({ port: info.port, close: () => new Promise((done) => server.close(() => done())) });
    });
    server.once('error', reject);
  });
}

/** The real Vite dev server with the plugin, serving `fixture-rpc/`. */
async function startVite() {
  const { createServer } = await import('vite');
  const server = await createServer({ root: FIXTURE_DIR, server: { port: 0, host: HOSTNAME }, logLevel: 'silent' });
  await server.listen();
  const address = server.httpServer?.address();
  if (!address || typeof address === 'string') throw new Error('The Vite dev server has no TCP address');
  return { port: address.port, close: () => server.close() };
}
