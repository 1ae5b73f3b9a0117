import { configureRpc } from '@favn/vite-plugin-server-fns/client';

/** The dev users to pick from; `null` is anonymous. */
export const DEV_USERS = ['ann', 'bob'] as const;

const KEY = 'playground-dev-user';
const DEV_IDENTITY_HEADER = 'x-favn-dev-identity';

/**
 * The dev identity this tab acts as. Kept in sessionStorage, so two windows can be two users;
 * a new tab starts as the first one.
 */
export function devUser(): string | null {
  const saved = sessionStorage.getItem(KEY);
  return saved === null ? DEV_USERS[0] : saved || null;
}

/**
 * Sends the tab's dev identity with every call and push stream. In dev, with no auth configured, the
 * host takes the caller's claims from this header (or from the cookie `/_admin` sets for the browser).
 */
export function sendDevIdentity(): void {
  const user = devUser();
  if (user) configureRpc({ headers: { [DEV_IDENTITY_HEADER]: JSON.stringify({ sub: user }) } });
}

/** Switches user: the page starts again, so its queries and their push stream belong to the new caller. */
export function switchDevUser(user: string | null): void {
  sessionStorage.setItem(KEY, user ?? '');
  location.reload();
}
