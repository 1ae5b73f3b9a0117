import { serialize } from 'hono/utils/cookie';
import { RequestError } from '../../runtime/request-error.js';
import { DEV_IDENTITY_COOKIE } from './dev-identity.js';

/** Browsers keep cookies up to about 4 KiB, name and attributes included. */
const MAX_COOKIE_LENGTH = 4000;

/**
 * The `Set-Cookie` value that makes the browser act as a dev identity in auth mode `none`, read
 * back by `devIdentity`; `null` clears it. The cookie is `HttpOnly` and `SameSite=Strict` and
 * covers the whole host (cookies ignore ports, so it also reaches a page served on another port).
 * Meant for a dev-only `/_admin` action; outside dev the cookie is ignored.
 *
 * @example
 * c.header('set-cookie', devIdentityCookie({ sub: 'alice', roles: ['admin'] }))
 */
export function devIdentityCookie(claims: Record<string, unknown> | null, options: { secure?: boolean } = {}): string {
  const attributes = { path: '/', httpOnly: true, sameSite: 'Strict', secure: options.secure ?? false } as const;
  if (claims === null) return serialize(DEV_IDENTITY_COOKIE, '', { ...attributes, maxAge: 0 });
  if (typeof claims !== 'object' || Array.isArray(claims)) {
    throw RequestError.of('malformed', 'the dev identity must be a JSON object of claims, like {"sub":"alice"}');
  }
  const cookie = serialize(DEV_IDENTITY_COOKIE, JSON.stringify(claims), attributes);
  if (cookie.length > MAX_COOKIE_LENGTH) {
    const size = `${cookie.length} of ${MAX_COOKIE_LENGTH} bytes`;
    throw RequestError.of('malformed', `the dev identity is too large for a cookie (${size})`);
  }
  return cookie;
}
