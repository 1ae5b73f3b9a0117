import { hostAllowed, type IsolateLimits } from './limits.js';

interface FetchRequest {
  url: string;
  method?: string;
  headers?: [string, string][];
  body?: string;
}

/**
 * `ctx.fetch` of an action, on the host: http(s) only, hosts from the allowlist (redirects are
 * not followed then, so they cannot leave it), a timeout, and a cap on the response body.
 * Resolves with the response as JSON text for the isolate.
 */
export async function isolateFetch(payload: string, limits: IsolateLimits['fetch'], signal: AbortSignal): Promise<string> {
  const request = JSON.parse(payload) as FetchRequest;
  let url: URL;
  try {
    url = new URL(request.url);
  } catch {
    throw new Error(`ctx.fetch: ${JSON.stringify(request.url)} is not an absolute URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`ctx.fetch: only http and https URLs can be fetched (got ${url.protocol})`);
  if (!hostAllowed(limits.allowHosts, url)) {
    throw new Error(`ctx.fetch: ${url.host} is not in isolate.fetch.allowHosts of feature.json (${limits.allowHosts?.join(', ')})`);
  }
  const timeout = AbortSignal.timeout(limits.timeoutMs);
  let response: Response;
  try {
    response = await fetch(url, {
      method: request.method ?? 'GET',
      headers: request.headers,
      body: request.body,
      redirect: limits.allowHosts ? 'manual' : 'follow',
      signal: AbortSignal.any([signal, timeout]),
    });
  } catch (error) {
    if (timeout.aborted) throw new Error(`ctx.fetch(${url.origin}${url.pathname}) timed out after ${limits.timeoutMs} ms`);
    throw new Error(`ctx.fetch(${url.origin}${url.pathname}) failed: ${(error as Error).message}`);
  }
  const body = await readCapped(response, limits.maxResponseBytes, url);
  return JSON.stringify({ status: response.status, statusText: response.statusText, url: response.url || url.href, headers: [...response.headers], body });
}

async function readCapped(response: Response, max: number, url: URL): Promise<string> {
  const declared = Number(response.headers.get('content-length'));
  if (declared > max) {
    await response.body?.cancel();
    throw new Error(`ctx.fetch(${url.origin}${url.pathname}): the response (${declared} bytes) is over the limit of ${max} bytes`);
  }
  if (!response.body) return '';
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel();
      throw new Error(`ctx.fetch(${url.origin}${url.pathname}): the response is over the limit of ${max} bytes`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}
