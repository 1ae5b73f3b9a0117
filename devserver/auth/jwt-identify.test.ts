import { exportPKCS8, importPKCS8 } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RequestError } from '../../runtime/request-error.js';
import { ANONYMOUS } from './identity.js';
import { createHost } from '../host/host.js';
import type { JwtAuthConfig } from './auth-config.js';
import { createJwtIdentify, identifyFromContext } from './jwt-identify.js';
import {
  makeKeys,
  now,
  publicJwk,
  SECRET,
  serveJwks,
  sign,
  signHs,
  unsignedToken,
  type JwksServer,
} from './__fixtures__/tokens.js';

const rsa = await makeKeys('RS256');
const ec = await makeKeys('ES256');
const otherRsa = await makeKeys('RS256');

const HS: JwtAuthConfig = { mode: 'jwt', hs256Secret: SECRET };
const RS: JwtAuthConfig = { mode: 'jwt', publicKey: rsa.pem };

function bearer(token: string): Headers {
  return new Headers({ authorization: `Bearer ${token}` });
}

/** The 401 (or other) RequestError that `promise` rejects with. */
async function failure(promise: Promise<unknown>): Promise<RequestError> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  if (!(error instanceof RequestError)) throw new Error(`expected a RequestError, got ${String(error)}`);
  return error;
}

async function expect401(config: JwtAuthConfig, token: string, reason: string): Promise<void> {
  const error = await failure(createJwtIdentify(config)(bearer(token)));
  expect(error.status).toBe(401);
  expect(error.message).toBe(`Unauthorized: ${reason}`);
  expect(error.message).not.toContain(token);
}

describe('createJwtIdentify: signatures', () => {
  let jwks: JwksServer;
  beforeAll(async () => {
    jwks = await serveJwks({ keys: [await publicJwk(rsa, 'rsa-1'), await publicJwk(ec, 'ec-1')] });
  });
  afterAll(() => jwks.close());

  it('accepts an HS256 token signed with the shared secret', async () => {
    const identity = await createJwtIdentify(HS)(bearer(await signHs({ sub: 'ann', roles: ['editor'] })));
    expect(identity.claims?.sub).toBe('ann');
    expect(identity.userRoles).toEqual(['editor']);
  });

  it('accepts an RS256 token verified with the PEM public key', async () => {
    const identity = await createJwtIdentify(RS)(bearer(await sign({ sub: 'ann' }, rsa.privateKey, 'RS256')));
    expect(identity.claims?.sub).toBe('ann');
  });

  it('accepts an ES256 token verified with the PEM public key', async () => {
    const identity = await createJwtIdentify({ mode: 'jwt', publicKey: ec.pem })(
      bearer(await sign({ sub: 'ec-user' }, ec.privateKey, 'ES256')),
    );
    expect(identity.claims?.sub).toBe('ec-user');
  });

  it('accepts RS256 and ES256 tokens verified against a JWKS endpoint', async () => {
    const identify = createJwtIdentify({ mode: 'jwt', jwksUrl: jwks.url });
    const viaRsa = await identify(bearer(await sign({ sub: 'r' }, rsa.privateKey, 'RS256', { kid: 'rsa-1' })));
    const viaEc = await identify(bearer(await sign({ sub: 'e' }, ec.privateKey, 'ES256', { kid: 'ec-1' })));
    expect([viaRsa.claims?.sub, viaEc.claims?.sub]).toEqual(['r', 'e']);
  });

  it('tries every key of a rotating key set when the token has no kid', async () => {
    const rotating = await serveJwks({ keys: [await publicJwk(rsa), await publicJwk(otherRsa)] });
    try {
      const identify = createJwtIdentify({ mode: 'jwt', jwksUrl: rotating.url });
      const identity = await identify(bearer(await sign({ sub: 'new-key' }, otherRsa.privateKey, 'RS256')));
      expect(identity.claims?.sub).toBe('new-key');
      await expect401(
        { mode: 'jwt', jwksUrl: rotating.url },
        await sign({ sub: 'x' }, (await makeKeys('RS256')).privateKey, 'RS256'),
        'token signature invalid',
      );
    } finally {
      await rotating.close();
    }
  });

  it('refuses a token signed with another key', async () => {
    await expect401(RS, await sign({ sub: 'ann' }, otherRsa.privateKey, 'RS256'), 'token signature invalid');
    await expect401(HS, await signHs({ sub: 'ann' }, 'another-secret-0123456789abcdefgh'), 'token signature invalid');
    await expect401(
      { mode: 'jwt', jwksUrl: jwks.url },
      await sign({ sub: 'ann' }, otherRsa.privateKey, 'RS256', { kid: 'unknown' }),
      'no signing key matches the token',
    );
  });

  it('refuses an unsigned alg "none" token in every key mode', async () => {
    const token = unsignedToken({ sub: 'admin', roles: ['admin'] });
    for (const config of [HS, RS, { mode: 'jwt', jwksUrl: jwks.url } as const]) {
      await expect401(config, token, 'token signing algorithm not allowed');
    }
  });

  it('refuses algorithm confusion: an HS256 token whose secret is the RSA public key', async () => {
    const forged = await sign({ sub: 'admin', roles: ['admin'] }, new TextEncoder().encode(rsa.pem), 'HS256');
    await expect401(RS, forged, 'token signing algorithm not allowed');
    await expect401({ mode: 'jwt', jwksUrl: jwks.url }, forged, 'token signing algorithm not allowed');
  });

  it('refuses an algorithm the key supports but the allow-list does not name', async () => {
    // The same RSA key, bound to RS384 instead of RS256.
    const rs384 = await sign({ sub: 'ann' }, await importPKCS8(await exportPKCS8(rsa.privateKey), 'RS384'), 'RS384');
    await expect401(RS, rs384, 'token signing algorithm not allowed');
    const identity = await createJwtIdentify({ ...RS, algorithms: ['RS256', 'RS384'] })(bearer(rs384));
    expect(identity.claims?.sub).toBe('ann');
  });

  it('refuses garbage, broken and oversized tokens', async () => {
    await expect401(HS, 'not-a-token', 'token malformed');
    await expect401(HS, 'a.b.c', 'token malformed');
    await expect401(HS, `${(await signHs({ sub: 'x' })).slice(0, -4)}AAAA`, 'token signature invalid');
    await expect401(HS, 'x'.repeat(17_000), 'token too large');
  });
});

describe('createJwtIdentify: claims', () => {
  it('refuses an expired token, unless within the clock tolerance', async () => {
    const token = await signHs({ sub: 'ann', exp: now() - 60 });
    await expect401(HS, token, 'token expired');
    const identity = await createJwtIdentify({ ...HS, clockToleranceSec: 120 })(bearer(token));
    expect(identity.claims?.sub).toBe('ann');
  });

  it('refuses a token that is not valid yet', async () => {
    await expect401(HS, await signHs({ sub: 'ann', nbf: now() + 600 }), 'token not yet valid');
  });

  it('refuses a token without exp', async () => {
    await expect401(HS, await signHs({ sub: 'ann', exp: null }), 'token has no "exp" claim');
  });

  it('checks the issuer when one is configured', async () => {
    const config: JwtAuthConfig = { ...HS, issuer: ['https://id.example.com', 'https://id2.example.com'] };
    await expect401(config, await signHs({ sub: 'ann', iss: 'https://evil.example.com' }), 'token issuer not accepted');
    await expect401(config, await signHs({ sub: 'ann' }), 'token has no "iss" claim');
    const identity = await createJwtIdentify(config)(
      bearer(await signHs({ sub: 'ann', iss: 'https://id2.example.com' })),
    );
    expect(identity.claims?.iss).toBe('https://id2.example.com');
  });

  it('checks the audience when one is configured', async () => {
    const config: JwtAuthConfig = { ...HS, audience: 'favn-app' };
    await expect401(config, await signHs({ sub: 'ann', aud: 'other-app' }), 'token audience not accepted');
    const identity = await createJwtIdentify(config)(
      bearer(await signHs({ sub: 'ann', aud: ['account', 'favn-app'] })),
    );
    expect(identity.claims?.sub).toBe('ann');
  });

  it('maps roles, groups, grants, tenant and feature toggles into the identity', async () => {
    const identify = createJwtIdentify({
      ...HS,
      groupRoles: { '/staff': ['editor'] },
      grants: { ann: ['owner'], '*': ['user'] },
      tenantClaim: 'org',
      defaultTenantId: 'default-tenant',
      featureToggles: ['beta'],
    });
    const ann = await identify(
      bearer(
        await signHs({
          sub: 'ann',
          roles: ['editor', 'viewer'],
          realm_access: { roles: ['offline_access'] },
          groups: ['/staff'],
          org: 'acme',
        }),
      ),
    );
    expect(ann).toMatchObject({
      userRoles: ['editor', 'viewer', 'offline_access', 'owner', 'user'],
      tenantId: 'acme',
      featureToggles: ['beta'],
    });
    const bob = await identify(bearer(await signHs({ sub: 'bob' })));
    expect(bob).toMatchObject({ userRoles: ['user'], tenantId: 'default-tenant' });
  });
});

describe('createJwtIdentify: grants["*"] means every signed-in caller', () => {
  const EVERYONE: JwtAuthConfig = { ...HS, grants: { '*': ['member'], ann: ['owner'] }, featureToggles: ['beta'] };

  it('grants "*" to each caller with a valid token, with or without a sub', async () => {
    const identify = createJwtIdentify(EVERYONE);
    expect((await identify(bearer(await signHs({ sub: 'ann' })))).userRoles).toEqual(['owner', 'member']);
    expect((await identify(bearer(await signHs({ sub: 'bob' })))).userRoles).toEqual(['member']);
    expect((await identify(bearer(await signHs({ roles: ['viewer'] })))).userRoles).toEqual(['viewer', 'member']);
  });

  it('never grants "*" to an anonymous caller, who keeps the host-wide feature toggles only', async () => {
    const identify = identifyFromContext(createJwtIdentify(EVERYONE));
    const { app } = createHost([], {
      logCall: null,
      before: (app) => app.get('/me', async (c) => c.json(await identify(c))),
    });
    const anonymous = await app.request('/me');
    expect(await anonymous.json()).toEqual({ claims: null, userRoles: [], tenantId: null, featureToggles: ['beta'] });
    const signedIn = await app.request('/me', { headers: { authorization: `Bearer ${await signHs({ sub: 'bob' })}` } });
    expect(await signedIn.json()).toMatchObject({ userRoles: ['member'], featureToggles: ['beta'] });
    // A token that does not verify is refused, never served as anonymous.
    const forged = await app.request('/me', {
      headers: { authorization: `Bearer ${await signHs({ sub: 'bob' }, 'x'.repeat(32))}` },
    });
    expect(forged.status).toBe(401);
  });
});

describe('createJwtIdentify: where the token comes from', () => {
  const withCookie: JwtAuthConfig = { ...HS, cookie: 'access_token' };

  it('reads Authorization: Bearer, then x-auth-request-access-token, then the configured cookie', async () => {
    const token = await signHs({ sub: 'ann' });
    const identify = createJwtIdentify(withCookie);
    expect((await identify(bearer(token))).claims?.sub).toBe('ann');
    expect((await identify(new Headers({ 'x-auth-request-access-token': token }))).claims?.sub).toBe('ann');
    expect((await identify(new Headers({ cookie: `theme=dark; access_token=${token}` }))).claims?.sub).toBe('ann');
  });

  it('uses the first place that has a token, even when that token is invalid', async () => {
    const good = await signHs({ sub: 'ann' });
    const error = await failure(
      createJwtIdentify(withCookie)(
        new Headers({ authorization: 'Bearer garbage', 'x-auth-request-access-token': good }),
      ),
    );
    expect(error.status).toBe(401);
  });

  it('ignores the cookie unless one is configured, and Authorization schemes other than Bearer', async () => {
    const token = await signHs({ sub: 'ann' });
    expect(await createJwtIdentify(HS)(new Headers({ cookie: `access_token=${token}` }))).toBe(ANONYMOUS);
    expect(await createJwtIdentify(HS)(new Headers({ authorization: 'Basic YWxpY2U6c2VjcmV0' }))).toBe(ANONYMOUS);
  });

  it('refuses an Authorization header that says Bearer but carries no usable token', async () => {
    for (const value of ['Bearer', 'Bearer ', 'Bearer a b']) {
      const error = await failure(createJwtIdentify(HS)(new Headers({ authorization: value })));
      expect([error.status, error.message]).toEqual([
        401,
        'Unauthorized: the Authorization header must be "Bearer <token>"',
      ]);
    }
  });

  it('treats a missing token as anonymous, or as 401 when auth is required', async () => {
    expect(await createJwtIdentify(HS)(new Headers())).toBe(ANONYMOUS);
    const error = await failure(createJwtIdentify({ ...withCookie, required: true })(new Headers()));
    expect(error.status).toBe(401);
    expect(error.message).toMatch(
      /^Unauthorized: no token; send one in "Authorization: Bearer <token>", the x-auth-request-access-token header or the access_token cookie$/,
    );
  });
});

describe('createJwtIdentify: key set outages', () => {
  it('answers 503 when the JWKS endpoint fails or cannot be reached', async () => {
    const down = await serveJwks({ status: 500 });
    const token = await sign({ sub: 'ann' }, rsa.privateKey, 'RS256');
    const failing = await failure(createJwtIdentify({ mode: 'jwt', jwksUrl: down.url })(bearer(token)));
    expect([failing.status, failing.message]).toEqual([
      503,
      'Server functions unavailable: the signing keys (JWKS) could not be fetched, so no token can be verified',
    ]);
    await down.close();
    const unreachable = await failure(createJwtIdentify({ mode: 'jwt', jwksUrl: down.url })(bearer(token)));
    expect(unreachable.status).toBe(503);
  });

  it('fetches the key set once and reuses it', async () => {
    const server = await serveJwks({ keys: [await publicJwk(rsa, 'k')] });
    try {
      const identify = createJwtIdentify({ mode: 'jwt', jwksUrl: server.url });
      for (let i = 0; i < 3; i++)
        await identify(bearer(await sign({ sub: `u${i}` }, rsa.privateKey, 'RS256', { kid: 'k' })));
      expect(server.hits()).toBe(1);
    } finally {
      await server.close();
    }
  });
});

describe('identifyFromContext', () => {
  it('identifies a Hono request from its headers, and its 401 reaches the client', async () => {
    const identify = identifyFromContext(createJwtIdentify(RS));
    const { app } = createHost([], {
      logCall: null,
      before: (app) => app.get('/me', async (c) => c.json(await identify(c))),
    });
    const token = await sign({ sub: 'ann', roles: ['admin'] }, rsa.privateKey, 'RS256');
    const ok = await app.request('/me', { headers: { authorization: `Bearer ${token}` } });
    expect(await ok.json()).toMatchObject({ claims: { sub: 'ann' }, userRoles: ['admin'] });
    const refused = await app.request('/me', { headers: { authorization: 'Bearer nope' } });
    expect(refused.status).toBe(401);
    expect(((await refused.json()) as { error: string }).error).toBe('Unauthorized: token malformed');
  });
});
