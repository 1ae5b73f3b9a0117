import { parse as parseCookies } from 'hono/utils/cookie';
import { RequestError } from '../../runtime/request-error.js';

/** Anything with `get(name)` for request headers: a Fetch `Headers`, or an adapter over another API. */
export interface HeaderSource {
  get(name: string): string | null | undefined;
}

/** Header an auth proxy (oauth2-proxy and alike) sets to the caller's access token. */
export const FORWARDED_TOKEN_HEADER = 'x-auth-request-access-token';

const BEARER = /^Bearer +([^\s]+) *$/i;
const BEARER_SCHEME = /^Bearer(?:\s|$)/i;

/**
 * The caller's token, from `Authorization: Bearer <token>`, else the auth proxy's
 * `x-auth-request-access-token` header, else the named cookie; null when none carries one. The
 * first place that has a value wins, even if its token turns out invalid. An `Authorization`
 * header of another scheme (Basic, ...) is not a token and is skipped; a broken Bearer one is 401.
 *
 * @example
 * readToken(new Headers({ authorization: 'Bearer eyJ...' })) // 'eyJ...'
 */
export function readToken(headers: HeaderSource, cookieName?: string): string | null {
  const authorization = headers.get('authorization');
  if (authorization && BEARER_SCHEME.test(authorization)) {
    const token = BEARER.exec(authorization)?.[1];
    if (!token) throw RequestError.of('unauthorized', 'the Authorization header must be "Bearer <token>"');
    return token;
  }
  const forwarded = headers.get(FORWARDED_TOKEN_HEADER)?.trim();
  if (forwarded) return forwarded;
  if (cookieName) {
    const cookieHeader = headers.get('cookie');
    const fromCookie = cookieHeader ? parseCookies(cookieHeader, cookieName)[cookieName] : undefined;
    if (fromCookie) return fromCookie;
  }
  return null;
}
