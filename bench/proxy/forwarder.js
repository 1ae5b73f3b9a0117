/**
 * The proxy bench's baseline for a forwarding hop: a minimal forwarder, a bare Hono app on
 * `@hono/node-server` in its own process, that forwards `POST /rpc/{featureId}/{fn}` to the
 * upstream's `POST /rpc/{fn}` with the body as received, over a keep-alive `node:http` Agent (as
 * `favn serve`'s endpoint executor does), and passes the answer's status and body back. It does
 * nothing else (no auth, rate limit, context, timeout or logging): what is left is the cost of an
 * extra HTTP hop itself.
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
  forwarder: () => startForwarder(Number(process.env.BENCH_PROXY_UPSTREAM_PORT)),
};

/** @param {number} upstreamPort */
function startForwarder(upstreamPort) {
  if (!Number.isInteger(upstreamPort) || upstreamPort <= 0)
    throw new Error('forwarder: BENCH_PROXY_UPSTREAM_PORT must be the upstream port');
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
        close: () =>
          new Promise((done) =>
            server.close(() => {
              agent.destroy();
              done();
            }),
          ),
      });
    });
    server.once('error', reject);
  });
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
