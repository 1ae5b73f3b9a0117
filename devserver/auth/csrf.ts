import { RequestError } from '../../runtime/request-error.js';
import { UsageError } from '../common/usage-error.js';
import type { HeaderSource } from './read-token.js';

/** Settings of the cross-site request check. */
export interface CrossSiteOptions {
  /** Origins (`https://app.example.com`) that may call although they are not this host. */
  allowedOrigins?: string[];
  /** Read the public host and scheme from `X-Forwarded-Host`/`X-Forwarded-Proto` (behind a proxy you run). */
  trustProxy?: boolean;
  /** The public host (`app.example.com[:port]`), when the `Host` header is not it. Wins over the proxy headers. */
  host?: string;
}

/** Checks one request's headers; `requestUrl` supplies the host when no header names it. */
export type CrossSiteCheck = (headers: HeaderSource, requestUrl?: string) => void;

/**
 * Refuses a state-changing request that a browser sent on behalf of another site (CSRF) with 403
 * `Forbidden: cross-site request ...`. Call it for POST/PUT/PATCH/DELETE only.
 *
 * - `Sec-Fetch-Site: same-origin` (or `none`, a user-typed request) passes.
 * - An `Origin` listed in `allowedOrigins` passes.
 * - Any other `Sec-Fetch-Site`, `cross-site` and also `same-site`, is refused: a sibling subdomain
 *   is another origin and may be less trusted (user content, another team's app). List it in
 *   `allowedOrigins` to let it in.
 * - Without `Sec-Fetch-Site` (older browsers), an `Origin` must name this host; `Origin: null` is refused.
 * - Without both headers (curl, server-to-server) the request passes: only browsers carry ambient
 *   credentials, and every browser that could send such a request sends one of the two.
 *
 * @example
 * checkCrossSite(c.req.raw.headers, { allowedOrigins: ['https://portal.example.com'] })
 */
export function checkCrossSite(headers: HeaderSource, options: CrossSiteOptions = {}): void {
  createCrossSiteCheck(options)(headers);
}

/**
 * `checkCrossSite` with its options checked and normalized once, for the per-request path. A bad
 * `allowedOrigins` entry throws a `UsageError`.
 *
 * @example
 * const checkOrigin = createCrossSiteCheck({ trustProxy: true })
 * app.post('/rpc/:featureId/:fnName', (c) => { checkOrigin(c.req.raw.headers, c.req.url); ... })
 */
export function createCrossSiteCheck(options: CrossSiteOptions = {}): CrossSiteCheck {
  const allowed = new Set((options.allowedOrigins ?? []).map(normalizeAllowedOrigin));
  const trustProxy = options.trustProxy ?? false;
  const fixedHost = options.host?.trim().toLowerCase();
  return function checkOrigin(headers, requestUrl) {
    const site = headers.get('sec-fetch-site')?.toLowerCase();
    if (site === 'same-origin' || site === 'none') return;
    const origin = headers.get('origin')?.toLowerCase();
    if (origin && allowed.has(origin)) return;
    if (site) refuse(`Sec-Fetch-Site: ${quote(site)}${origin ? `, Origin: ${quote(origin)}` : ''}`);
    if (!origin) return;
    if (origin === 'null') refuse('Origin "null" is opaque');
    const expected = requestOrigin(headers, requestUrl, fixedHost, trustProxy);
    if (!expected.host) refuse(`Origin ${quote(origin)}, and no Host to compare it with`);
    if (!sameOrigin(origin, expected)) refuse(`Origin ${quote(origin)} is not host ${quote(expected.host)}`);
  };
}

function refuse(detail: string): never {
  const fix = 'add the origin to allowedOrigins if it is trusted';
  throw new RequestError(403, `Forbidden: cross-site request refused (${detail}); ${fix}`);
}

/** The public host (and scheme, when a trusted proxy says it) the request was sent to. */
function requestOrigin(
  headers: HeaderSource,
  requestUrl: string | undefined,
  fixedHost: string | undefined,
  trustProxy: boolean,
): { host: string; scheme: string | null } {
  const scheme = trustProxy ? firstValue(headers.get('x-forwarded-proto')) : null;
  const host =
    fixedHost ||
    (trustProxy ? firstValue(headers.get('x-forwarded-host')) : null) ||
    headers.get('host')?.trim().toLowerCase() ||
    hostOf(requestUrl);
  return { host, scheme: scheme ? scheme.toLowerCase() : null };
}

/** Compares hosts (ports included, default ports ignored); the scheme too when it is known. */
function sameOrigin(origin: string, expected: { host: string; scheme: string | null }): boolean {
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false;
  }
  const scheme = url.protocol.slice(0, -1);
  if (expected.scheme && expected.scheme !== scheme) return false;
  return url.host === withoutDefaultPort(expected.host, scheme);
}

function withoutDefaultPort(host: string, scheme: string): string {
  const port = scheme === 'https' ? ':443' : scheme === 'http' ? ':80' : null;
  return port && host.endsWith(port) ? host.slice(0, -port.length) : host;
}

function firstValue(header: string | null | undefined): string | null {
  const value = header?.split(',')[0]?.trim().toLowerCase();
  return value || null;
}

function hostOf(url: string | undefined): string {
  if (!url) return '';
  try {
    return new URL(url).host;
  } catch {
    return '';
  }
}

function normalizeAllowedOrigin(entry: string, index: number): string {
  const where = `allowedOrigins[${index}]`;
  if (entry === '*' || entry === 'null')
    throw new UsageError(
      `${where} is ${JSON.stringify(entry)}: list each trusted origin, like "https://app.example.com"`,
    );
  let url: URL;
  try {
    url = new URL(entry);
  } catch {
    throw new UsageError(`${where} must be an origin like "https://app.example.com" (got ${JSON.stringify(entry)})`);
  }
  const bare = url.pathname === '/' && !url.search && !url.hash && !url.username && !url.password;
  if (url.origin === 'null' || !bare || !entry.includes('://')) {
    throw new UsageError(
      `${where} must be a bare origin, scheme and host with no path, like "https://app.example.com" (got ${JSON.stringify(entry)})`,
    );
  }
  return url.origin;
}

function quote(value: string): string {
  return JSON.stringify(value.length > 100 ? `${value.slice(0, 100)}...` : value);
}
