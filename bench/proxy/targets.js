/**
 * The upstream of the proxy bench: a bare Hono app on `@hono/node-server` serving
 * `POST /rpc/getData`, the feature's own backend that `favn serve` forwards to in endpoint mode.
 * It answers both bodies it receives with the same small JSON: the direct one (`{"args":[]}`)
 * and the forwarded one (`{"args":[],"context":{...}}`, whose `context.featureId` it checks).
 *
 * Run by `bench/lib/server-child.js`, which waits until `RPC_PATH` answers `RPC_BODY` with
 * `RPC_RESPONSE`.
 */
import { serve } from '@hono/node-server';
import { Hono } from 'hono';

/** The endpoint-mode feature `favn serve` hosts, and its one function. */
export const FEATURE_ID = 'feature-bench-proxy';
export const FN_NAME = 'getData';

/** Path, body and answer of a direct call to the upstream. */
export const RPC_PATH = `/rpc/${FN_NAME}`;
export const RPC_BODY = JSON.stringify({ args: [] });
export const RPC_RESPONSE = JSON.stringify({ items: ['a', 'b', 'c'] });

/** Path of the same call through the host. */
export const PROXY_PATH = `/rpc/${FEATURE_ID}/${FN_NAME}`;

const HOSTNAME = '127.0.0.1';
const ITEMS = ['a', 'b', 'c'];

/** @typedef {{ port: number, close: () => Promise<void> }} Running */

/** @type {Record<string, () => Promise<Running>>} */
export const targets = {
  upstream: () => serveFetch(upstreamApp().fetch),
};

/** The upstream's one route: reads the body, checks its shape, answers `{ items }`. */
function upstreamApp() {
  const app = new Hono();
  app.post(RPC_PATH, async (c) => {
    const body = await c.req.json();
    if (!Array.isArray(body?.args)) return c.json({ error: '"args" must be an array' }, 400);
    // Only a forwarded call carries a context; it must name the feature the host serves.
    if (body.context !== undefined && body.context?.featureId !== FEATURE_ID)
      return c.json({ error: `unexpected context ${JSON.stringify(body.context)}` }, 400);
    return c.json({ items: ITEMS });
  });
  return app;
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
