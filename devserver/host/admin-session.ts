import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { serialize } from 'hono/utils/cookie';

/** Cookie of a browser logged in to `/_admin` with the admin token. */
export const ADMIN_SESSION_COOKIE = 'favn_admin';

/** How long a login lasts. */
export const ADMIN_SESSION_TTL_MS = 8 * 60 * 60 * 1000;

/** Most live sessions kept; past it the oldest ends first (a login is rare, a leak must stay small). */
const MAX_SESSIONS = 1000;

/**
 * The logged-in `/_admin` browsers of one host process. A session value is 32 random bytes; only
 * its SHA-256 is kept, with an expiry, so a value is useless once it expires, is logged out or the
 * process ends. The value never derives from the admin token.
 *
 * @example
 * const sessions = new AdminSessions()
 * const value = sessions.create()
 * sessions.has(value) // true until logout or expiry
 */
export class AdminSessions {
  readonly #expires = new Map<string, number>();
  readonly #ttlMs: number;
  readonly #now: () => number;

  constructor(options: { ttlMs?: number; now?: () => number } = {}) {
    this.#ttlMs = options.ttlMs ?? ADMIN_SESSION_TTL_MS;
    this.#now = options.now ?? Date.now;
  }

  /** Starts a session and returns the value for its cookie. */
  create(): string {
    const value = randomBytes(32).toString('base64url');
    if (this.#expires.size >= MAX_SESSIONS) this.#expires.delete(this.#expires.keys().next().value as string);
    this.#expires.set(digest(value), this.#now() + this.#ttlMs);
    return value;
  }

  /** True for the value of a live session. */
  has(value: string | undefined): boolean {
    if (!value) return false;
    const key = digest(value);
    const expires = this.#expires.get(key);
    if (expires === undefined) return false;
    if (expires > this.#now()) return true;
    this.#expires.delete(key);
    return false;
  }

  /** Ends the session of this value (logout); unknown values are ignored. */
  end(value: string | undefined): void {
    if (value) this.#expires.delete(digest(value));
  }

  /** The `Set-Cookie` header that stores a session value, scoped to `/_admin`. */
  cookie(value: string, options: { secure: boolean }): string {
    const maxAge = Math.floor(this.#ttlMs / 1000);
    return serialize(ADMIN_SESSION_COOKIE, value, { ...attributes(options.secure), maxAge });
  }

  /** The `Set-Cookie` header that removes the session cookie. */
  clearCookie(options: { secure: boolean }): string {
    return serialize(ADMIN_SESSION_COOKIE, '', { ...attributes(options.secure), maxAge: 0 });
  }
}

/**
 * Compares a given secret with the expected one in constant time, whatever their lengths: both
 * are hashed first, so neither the content nor the length leaks through timing.
 *
 * @example
 * sameSecret(givenToken, adminToken)
 */
export function sameSecret(given: string, expected: string): boolean {
  return timingSafeEqual(createHash('sha256').update(given).digest(), createHash('sha256').update(expected).digest());
}

function attributes(secure: boolean) {
  // JavaScript cannot read it, other sites' requests never carry it, and it only goes to /_admin.
  return { path: '/_admin', httpOnly: true, sameSite: 'Strict', secure } as const;
}

function digest(value: string): string {
  return createHash('sha256').update(value).digest('base64url');
}
