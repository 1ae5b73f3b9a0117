import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import { pipeline, type Readable } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate, constants as zlib } from 'node:zlib';
import { checkFetchTarget } from './fetch-guard.js';
import type { IsolateLimits } from './limits.js';
import { pinnedRequest, type PinnedInit } from './pinned-request.js';

interface FetchRequest {
  url: string;
  method?: string;
  headers?: [string, string][];
  body?: string;
}

/** Redirects followed (only without an allow-list); each hop is checked like the first URL. */
const MAX_REDIRECTS = 5;
const REDIRECT = new Set([301, 302, 303, 307, 308]);
const NORMALIZED_METHODS = new Set(['DELETE', 'GET', 'HEAD', 'OPTIONS', 'PATCH', 'POST', 'PUT']);
// Headers that decide where and how the request is framed: the host sets them, never the action.
const HOST_HEADERS = new Set([
  'host',
  'content-length',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'upgrade',
  'te',
  'trailer',
  'expect',
  'proxy-connection',
  'http2-settings',
]);
// Credentials the action set for one origin do not follow a redirect to another (as in fetch).
const ORIGIN_BOUND_HEADERS = ['authorization', 'cookie', 'proxy-authorization'];

/**
 * `ctx.fetch` of an action, on the host: http(s) only, hosts from the allow-list, public
 * addresses only (after DNS resolution) unless a host is listed exactly, the connection pinned
 * to the checked addresses, redirects not followed when an allow-list is set (so they cannot
 * leave it) and otherwise followed with every hop checked, a timeout, and a cap on the response
 * body. The request carries only what the action set: no cookie or credential of the caller.
 * Resolves with the response as JSON text for the isolate.
 */
export async function isolateFetch(
  payload: string,
  limits: IsolateLimits['fetch'],
  signal: AbortSignal,
): Promise<string> {
  const request = JSON.parse(payload) as FetchRequest;
  let url: URL;
  try {
    url = new URL(request.url);
  } catch {
    throw new Error(`ctx.fetch: ${JSON.stringify(request.url)} is not an absolute URL`);
  }
  let init = requestInit(request);
  const timeout = AbortSignal.timeout(limits.timeoutMs);
  const both = AbortSignal.any([signal, timeout]);
  const first = url;
  const where = () => `ctx.fetch(${url.origin}${url.pathname})`;
  try {
    for (let hop = 0; ; hop++) {
      const addresses = await checkFetchTarget(url, limits.allowHosts, both).catch((error: Error) => {
        if (hop === 0) throw error;
        const why = error.message.replace(/^ctx\.fetch(\([^)]*\))?:? ?/, '');
        throw new Error(`ctx.fetch(${first.origin}${first.pathname}) was redirected to ${url.href}: ${why}`);
      });
      const response = await pinnedRequest(url, addresses, init, both);
      const location = response.headers.location;
      if (limits.allowHosts !== null || !REDIRECT.has(response.statusCode ?? 0) || location === undefined) {
        const body = await readCapped(response, limits.maxResponseBytes, init.method, where(), both);
        return JSON.stringify({
          status: response.statusCode,
          statusText: response.statusMessage ?? '',
          url: withoutHash(url),
          headers: headerPairs(response),
          body,
        });
      }
      response.destroy();
      if (hop === MAX_REDIRECTS) throw new Error(`${where()}: more than ${MAX_REDIRECTS} redirects`);
      const next = new URL(location, url);
      init = redirectInit(init, response.statusCode ?? 0, url, next);
      url = next;
    }
  } catch (error) {
    if (timeout.aborted) throw new Error(`${where()} timed out after ${limits.timeoutMs} ms`);
    const message = (error as Error).message;
    throw new Error(message.startsWith('ctx.fetch') ? message : `${where()} failed: ${message}`);
  }
}

function requestInit(request: FetchRequest): PinnedInit {
  const upper = String(request.method ?? 'GET').toUpperCase();
  const method = NORMALIZED_METHODS.has(upper) ? upper : String(request.method);
  if (['CONNECT', 'TRACE', 'TRACK'].includes(upper)) throw new Error(`ctx.fetch: the method ${method} is not allowed`);
  if (request.body !== undefined && request.body !== null && typeof request.body !== 'string') {
    throw new Error('ctx.fetch: body must be a string (use JSON.stringify for JSON)');
  }
  const body = request.body ?? undefined;
  if (body !== undefined && (method === 'GET' || method === 'HEAD')) {
    throw new Error(`ctx.fetch: a ${method} request cannot have a body`);
  }
  const headers: OutgoingHttpHeaders = {};
  for (const pair of request.headers ?? []) {
    const [name, value] = [String(pair[0]).toLowerCase(), String(pair[1])];
    if (HOST_HEADERS.has(name)) throw new Error(`ctx.fetch: the ${name} header is set by the host and cannot be set`);
    headers[name] = headers[name] === undefined ? value : `${String(headers[name])}, ${value}`;
  }
  // What Node's fetch sends when the action does not say otherwise.
  headers.accept ??= '*/*';
  headers['user-agent'] ??= 'node';
  if (body !== undefined) headers['content-type'] ??= 'text/plain;charset=UTF-8';
  return { method, headers, body };
}

/** The next hop of a redirect, as fetch does it: 303 (and 301/302 after POST) become a GET. */
function redirectInit(init: PinnedInit, status: number, from: URL, to: URL): PinnedInit {
  const headers = { ...init.headers };
  let { method, body } = init;
  if ((status === 303 && method !== 'HEAD') || ((status === 301 || status === 302) && method === 'POST')) {
    method = 'GET';
    body = undefined;
    delete headers['content-type'];
  }
  if (from.origin !== to.origin) for (const name of ORIGIN_BOUND_HEADERS) delete headers[name];
  return { method, headers, body };
}

async function readCapped(
  response: IncomingMessage,
  max: number,
  method: string,
  where: string,
  signal: AbortSignal,
): Promise<string> {
  const declared = Number(response.headers['content-length']);
  if (declared > max) {
    response.destroy();
    throw new Error(`${where}: the response (${declared} bytes) is over the limit of ${max} bytes`);
  }
  const stream = decoded(response, method);
  const onAbort = () => stream.destroy(signal.reason as Error);
  signal.addEventListener('abort', onAbort, { once: true });
  if (signal.aborted) onAbort();
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      // Counted after decompression: a small gzip body must not unpack past the cap.
      size += chunk.byteLength;
      if (size > max) {
        stream.destroy();
        response.destroy();
        throw new Error(`${where}: the response is over the limit of ${max} bytes`);
      }
      chunks.push(chunk);
    }
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** The body as the action reads it: gzip, deflate and br content codings undone, as fetch does. */
function decoded(response: IncomingMessage, method: string): Readable {
  const status = response.statusCode ?? 0;
  if (method === 'HEAD' || status === 204 || status === 304) return response;
  const codings = String(response.headers['content-encoding'] ?? '')
    .toLowerCase()
    .split(',')
    .map((c) => c.trim())
    .filter(Boolean);
  // Sync flush, as fetch does: a body cut short still yields what arrived.
  const flush = { flush: zlib.Z_SYNC_FLUSH, finishFlush: zlib.Z_SYNC_FLUSH };
  const brotliFlush = zlib.BROTLI_OPERATION_FLUSH;
  const decoders = codings.reverse().map((coding) => {
    if (coding === 'gzip' || coding === 'x-gzip') return createGunzip(flush);
    if (coding === 'deflate') return createInflate(flush);
    if (coding === 'br') return createBrotliDecompress({ flush: brotliFlush, finishFlush: brotliFlush });
    return null;
  });
  // An unknown coding leaves the bytes as they came, like fetch.
  if (decoders.length === 0 || decoders.includes(null)) return response;
  return pipeline([response, ...(decoders as Readable[])], () => {}) as unknown as Readable;
}

/** Response headers as fetch lists them: lower-case names in order, each Set-Cookie on its own. */
function headerPairs(response: IncomingMessage): [string, string][] {
  const pairs: [string, string][] = [];
  for (const name of Object.keys(response.headers).sort()) {
    const value = response.headers[name];
    for (const one of Array.isArray(value) ? value : [value]) if (one !== undefined) pairs.push([name, String(one)]);
  }
  return pairs;
}

function withoutHash(url: URL): string {
  const copy = new URL(url);
  copy.hash = '';
  return copy.href;
}
