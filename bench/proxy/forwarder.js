/**
 * The proxy bench's baseline for a forwarding hop: a minimal forwarder, a bare Hono app on
 * `@hono/node-server` in its own process, that forwards `POST /rpc/{featureId}/{fn}` to the
 * upstream's `POST /rpc/{fn}` with the body as received, over a keep-alive `node:http` Agent (as
 * `favn serve`'s endpoint executor does), and passes the answer's status and body back. It does
 * nothing else (no auth, rate limit, context, timeout or logging): what is left is the cost of an
 * extra HTTP hop itself.
 *
 * `raw` is the same hop with no framework: a bare `node:http` server whose handler reads the body
 * and forwards it through the same keep-alive Agent, writing the upstream's status, content type
 * and body back (no Hono, no Web `Request` or `Response`). What Node's HTTP server and client
 * alone cost for a hop: the floor of any forwarder on this stack.
 *
 * The upstream's port comes from `BENCH_PROXY_UPSTREAM_PORT`. Run by `bench/lib/server-child.js`,
 * which waits until `RPC_PATH` answers `RPC_BODY` with `RPC_RESPONSE`.
 */
import http from 'node:http';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { PROXY_PATH, RPC_BODY as BODY, RPC_RESPONSE as RESPONSE } from './targets.js';

/** The forwarder is called on the path `favn serve` is called on. */
export const RPC_PATH = PROXY_PATH;
export const RPC_BODY = BODY;
export const RPC_RESPONSE = RESPONSE;

const HOSTNAME = '127.0.0.1';

/** @type {Record<string, () => Promise<{ port: number, close: () => Promise<void> }>>} */
export const targets = {
  forwarder: () => startForwarder(upstreamPort()),
  raw: () => startRawForwarder(upstreamPort()),
};

/** The upstream's port, from `BENCH_PROXY_UPSTREAM_PORT`. */
function upstreamPort() {
  const port = Number(process.env.BENCH_PROXY_UPSTREAM_PORT);
  if (!Number.isInteger(port) || port <= 0)
    throw new Error('forwarder: BENCH_PROXY_UPSTREAM_PORT must be the upstream port');
  return port;
}

/** @param {number} upstreamPort */
function startForwarder(upstreamPort) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const app = new Hono();
  app.post('/rpc/:featureId/:fn', async (c) => {
    const body = Buffer.from(await c.req.arrayBuffer());
    const answer = await forward(agent, upstreamPort, `/rpc/${c.req.param('fn')}`, body);
    return new Response(answer.body, {
      status: answer.status,
      headers: { 'content-type': answer.contentType ?? 'application/json' },
    });
  });
  return new Promise((resolve, reject) => {
    const server = serve({ fetch: app.fetch, port: 0, hostname: HOSTNAME }, (info) => {
      resolve({
        port: info.port,
        close: () => closeBoth(server, agent),
      });
    });
    server.once('error', reject);
  });
}

/**
 * The bare `node:http` forwarder: `POST /rpc/{featureId}/{fn}` to the upstream's `/rpc/{fn}`.
 *
 * @param {number} upstreamPort
 */
function startRawForwarder(upstreamPort) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const server = http.createServer((req, res) => {
    const match = /^\/rpc\/[^/]+\/([^/?]+)$/.exec(req.url ?? '');
    if (req.method !== 'POST' || !match) {
      res.writeHead(404).end();
      return;
    }
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => {
      forward(agent, upstreamPort, `/rpc/${match[1]}`, Buffer.concat(chunks)).then(
        (answer) => {
          res.writeHead(answer.status, {
            'content-type': answer.contentType ?? 'application/json',
            'content-length': answer.body.length,
          });
          res.end(answer.body);
        },
        () => res.writeHead(502).end(),
      );
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, HOSTNAME, () => {
      const address = /** @type {import('node:net').AddressInfo} */ (server.address());
      resolve({
        port: address.port,
        close: () => closeBoth(server, agent),
      });
    });
  });
}

/**
 * Closes the forwarder's server, then its connections to the upstream.
 *
 * @param {{ close: (callback: () => void) => unknown }} server
 * @param {http.Agent} agent
 * @returns {Promise<void>}
 */
function closeBoth(server, agent) {
  return new Promise((done) =>
    server.close(() => {
      agent.destroy();
      done();
    }),
  );
}

/**
 * One `POST` to the upstream; its status, content type and body.
 *
 * @param {http.Agent} agent
 * @param {number} port
 * @param {string} path
 * @param {Buffer} body
 * @returns {Promise<{ status: number, contentType: string | undefined, body: Buffer }>}
 */
function forward(agent, port, path, body) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        agent,
        host: HOSTNAME,
        port,
        path,
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': body.length },
      },
      (res) => {
        const chunks = [];
        res.on('data', (chunk) => chunks.push(chunk));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 502,
            contentType: res.headers['content-type'],
            body: Buffer.concat(chunks),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}
