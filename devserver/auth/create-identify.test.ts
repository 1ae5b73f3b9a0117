import { describe, expect, it } from 'vitest';
import { RequestError } from '../../runtime/request-error.js';
import { createHost } from '../host/host.js';
import { DEV_IDENTITY_HEADER } from './dev-identity.js';
import type { AuthConfig } from './auth-config.js';
import { createIdentify } from './create-identify.js';
import { devIdentityCookie } from './dev-identity-cookie.js';
import { SECRET, signHs } from './__fixtures__/tokens.js';

/**
 * A host answering `GET /me` with the identity `createIdentify(config, { dev })` establishes; a
 * refusal goes through the host's error handler, as on the RPC route.
 */
function whoAmI(config: AuthConfig, dev: boolean) {
  const identify = createIdentify(config, { dev });
  const host = createHost([], {
    dev,
    logCall: null,
    before: (app) => app.get('/me', async (c) => c.json(await identify(c))),
  });
  return host.app;
}

/** The `name=value` part of a Set-Cookie header, as the browser sends it back. */
function cookiePair(setCookie: string): string {
  return setCookie.split(';')[0] ?? '';
}

describe('createIdentify', () => {
  it('mode none in dev: the dev identity from the header or the cookie', async () => {
    const app = whoAmI({ mode: 'none' }, true);
    const viaHeader = await app.request('/me', {
      headers: { [DEV_IDENTITY_HEADER]: '{"sub":"ann","roles":["editor"]}' },
    });
    expect(await viaHeader.json()).toMatchObject({ claims: { sub: 'ann' }, userRoles: ['editor'] });
    const cookie = cookiePair(devIdentityCookie({ sub: 'bob', roles: ['admin'], tenant_id: 't1' }));
    const viaCookie = await app.request('/me', { headers: { cookie } });
    expect(await viaCookie.json()).toMatchObject({ claims: { sub: 'bob' }, userRoles: ['admin'], tenantId: 't1' });
    expect(await (await app.request('/me')).json()).toMatchObject({ claims: null, userRoles: [] });
  });

  it('mode none outside dev: always anonymous, whatever identity the request claims', async () => {
    const app = whoAmI({ mode: 'none' }, false);
    const cookie = cookiePair(devIdentityCookie({ sub: 'root', roles: ['admin'] }));
    const response = await app.request('/me', {
      headers: { [DEV_IDENTITY_HEADER]: '{"sub":"root","roles":["admin"]}', cookie },
    });
    expect(await response.json()).toEqual({ claims: null, userRoles: [], tenantId: null, featureToggles: [] });
  });

  it('mode jwt: verifies the token in dev and production alike, and ignores dev identities', async () => {
    for (const dev of [true, false]) {
      const app = whoAmI({ mode: 'jwt', hs256Secret: SECRET }, dev);
      const token = await signHs({ sub: 'ann' });
      expect(await (await app.request('/me', { headers: { authorization: `Bearer ${token}` } })).json()).toMatchObject({
        claims: { sub: 'ann' },
      });
      expect(
        await (await app.request('/me', { headers: { [DEV_IDENTITY_HEADER]: '{"sub":"root"}' } })).json(),
      ).toMatchObject({ claims: null });
      expect((await app.request('/me', { headers: { authorization: 'Bearer forged' } })).status).toBe(401);
    }
  });
});

describe('devIdentityCookie', () => {
  it('sets an HttpOnly, SameSite=Strict cookie for the whole host, and clears it with null', () => {
    expect(devIdentityCookie({ sub: 'ann' })).toBe(
      'favn_dev_identity=%7B%22sub%22%3A%22ann%22%7D; Path=/; HttpOnly; SameSite=Strict',
    );
    expect(devIdentityCookie({ sub: 'ann' }, { secure: true })).toMatch(/; Secure; SameSite=Strict$/);
    expect(devIdentityCookie(null)).toBe('favn_dev_identity=; Max-Age=0; Path=/; HttpOnly; SameSite=Strict');
  });

  it('refuses claims that are not an object or do not fit in a cookie', () => {
    expect(() => devIdentityCookie(['admin'] as unknown as Record<string, unknown>)).toThrow(RequestError);
    expect(() => devIdentityCookie({ sub: 'ann', roles: Array.from({ length: 400 }, (_, i) => `role-${i}`) })).toThrow(
      /too large for a cookie/,
    );
  });
});
