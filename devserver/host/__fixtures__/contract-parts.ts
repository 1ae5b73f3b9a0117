// Parts the contract tests assemble hosts from: features made by the real FeatureRuntime, a
// feature team's backend on loopback for endpoint mode, and the checks of one contract row.
import type { Server } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { expect } from 'vitest';
import { CONTRACT_ERRORS, contractText, REQUEST_ID_HEADER, type ContractErrorName } from '../../../runtime/protocol.js';
import { FeatureRuntime, type FeatureSources, type FeatureRuntimeOptions } from '../../feature/feature-runtime.js';
import type { ModuleEntry } from '../../feature/function-table.js';
import { parseManifest } from '../../feature/manifest.js';

export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Sends one request with these extra headers. */
export type Send = (headers: Record<string, string>) => Response | Promise<Response>;

/** What the client reads from a failed call. */
export interface Failure {
  status: number;
  error: string;
  requestId: string;
  headers: Headers;
}

/** Something the Hono way of calling an app without a socket works on. */
interface RequestTarget {
  request(path: string, init?: RequestInit): Response | Promise<Response>;
}

/**
 * `POST /rpc/{featureId}/{fnName}` with `{"args": [...]}` (or `body` as it is when a string).
 *
 * @example
 * await rpc(host.app, 'feature-a', 'getData', [42])
 */
export async function rpc(
  app: RequestTarget,
  featureId: string,
  fnName: string,
  body: unknown[] | string = [],
  headers: Record<string, string> = {},
): Promise<Response> {
  const text = typeof body === 'string' ? body : JSON.stringify({ args: body });
  return app.request(`/rpc/${featureId}/${fnName}`, {
    method: 'POST',
    body: text,
    headers: { 'content-type': 'application/json', ...headers },
  });
}

/** A failed call as a client reads it; checks the contract's shape on the way. */
export async function failure(res: Response): Promise<Failure> {
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  const body = (await res.json()) as Record<string, unknown>;
  expect(Object.keys(body).sort()).toEqual(['error', 'requestId']);
  expect(typeof body.error).toBe('string');
  expect(res.headers.get(REQUEST_ID_HEADER)).toBe(body.requestId);
  return { status: res.status, error: body.error as string, requestId: body.requestId as string, headers: res.headers };
}

let traces = 0;

/** A row of the contract: its status and the text the error starts with. */
export interface Row {
  status: number;
  text: string;
}

/**
 * Sends the request twice and expects the contract row both times: its status, the JSON body
 * `{error, requestId}` with the row's text first, and `x-request-id` equal to `requestId`. The
 * first time without an `x-request-id` (a fresh UUID), the second with a safe one, which the
 * answer keeps. `row` is a row of `CONTRACT_ERRORS` (with `name` for its `{name}`), or a status
 * and text. Returns the first answer.
 */
export async function expectRow(send: Send, row: ContractErrorName | Row, name?: string): Promise<Failure> {
  const { status, text } =
    typeof row === 'string' ? { status: CONTRACT_ERRORS[row].status, text: contractText(row, name) } : row;
  const fresh = await failure(await send({}));
  expect(fresh.status).toBe(status);
  expect(fresh.error.slice(0, text.length)).toBe(text);
  expect(fresh.requestId).toMatch(UUID);
  const traceId = `trace-${status}-${++traces}`;
  const traced = await failure(await send({ [REQUEST_ID_HEADER]: traceId }));
  expect([traced.status, traced.error.slice(0, text.length), traced.requestId]).toEqual([status, text, traceId]);
  return fresh;
}

/**
 * A feature of plain functions in one module, assembled and loaded by the real FeatureRuntime.
 * `manifest` holds more `feature.json` fields; `declared` defaults to the module's names.
 */
export async function plainFeature(
  id: string,
  functions: Record<string, unknown>,
  options: { manifest?: Record<string, unknown>; declared?: string[]; file?: string } = {},
): Promise<FeatureRuntime> {
  const names = Object.keys(functions);
  const file = options.file ?? 'src/api.server.ts';
  const runtime = featureRuntime(
    { id, ...options.manifest, serverFunctions: { module: 'server-functions.js', exports: options.declared ?? names } },
    {
      modules: () => [{ file, exportNames: names, load: () => functions }],
    },
  );
  await runtime.load();
  return runtime;
}

/** A FeatureRuntime for a `feature.json` (checked as the host checks it) and its sources. */
export function featureRuntime(
  manifest: Record<string, unknown>,
  sources: FeatureSources,
  options?: FeatureRuntimeOptions,
): FeatureRuntime {
  return new FeatureRuntime(parseManifest(JSON.stringify(manifest), 'feature.json'), sources, options);
}

/** One module entry that fails to import, as a syntax error does. */
export function brokenModule(file: string, exportNames: string[], message: string): ModuleEntry {
  return {
    file,
    exportNames,
    load: () => {
      throw new SyntaxError(message);
    },
  };
}

/** A feature team's backend for endpoint mode: real HTTP on a loopback port. */
export interface Upstream {
  url: string;
  close(): Promise<void>;
}

/**
 * Serves the backend: `getData` answers JSON, `garbage` HTML, `slow` nothing for 2 s.
 *
 * @example
 * const upstream = await startUpstream()
 * featureRuntime({ id, serverFunctions: { endpoint: `${upstream.url}/rpc`, exports: ['getData'] } }, { modules: () => [] })
 */
export async function startUpstream(): Promise<Upstream> {
  const app = new Hono();
  app.post('/rpc/getData', (c) => c.json({ items: ['a', 'b'] }));
  app.post('/rpc/garbage', (c) => c.html('<html>oops</html>'));
  app.post('/rpc/slow', async (c) => {
    await new Promise((resolve) => setTimeout(resolve, 2000));
    return c.json({ late: true });
  });
  let server!: Server;
  const port = await new Promise<number>((resolve) => {
    server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, (info) => resolve(info.port)) as Server;
  });
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** A loopback port nothing listens on (it was free a moment ago). */
export async function closedPort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
