import { describe, expect, it } from 'vitest';
import { AdminSessions } from './admin-session.js';
import { createHost, type HostOptions } from './host.js';
import { hostedFeature } from '../feature/hosted-feature.js';
import type { FeatureHealth, ReleasedFeature } from './health-route.js';

const TOKEN = 'admin-token-0123456789abcdef';

const hostWith = (options: HostOptions = { adminToken: TOKEN }) => createHost([], { logCall: null, ...options }).app;
type App = ReturnType<typeof hostWith>;

const html = { accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' };
const login = (app: App, token: string, headers: Record<string, string> = {}, url = 'http://localhost/_admin/login') =>
  app.request(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', 'sec-fetch-site': 'same-origin', ...headers },
    body: new URLSearchParams({ token }).toString(),
  });
const cookieOf = (res: Response) => /^favn_admin=([^;]*)/.exec(res.headers.get('set-cookie') ?? '')?.[1];

describe('/_admin on favn serve: token login for browsers', () => {
  it('a browser without a session gets a 401 login form; other clients get 401 JSON', async () => {
    const app = hostWith();
    const page = await app.request('/_admin', { headers: html });
    expect(page.status).toBe(401);
    const text = await page.text();
    expect(text).toContain('<form method="post" action="/_admin/login">');
    expect(text).toContain('type="password" name="token"');
    expect(text).not.toContain(TOKEN);
    expect([page.headers.get('cache-control'), page.headers.get('x-frame-options')]).toEqual(['no-store', 'DENY']);
    const api = await app.request('/_admin', { headers: { accept: 'application/json' } });
    expect([api.status, ((await api.json()) as { error: string }).error]).toEqual([
      401,
      expect.stringMatching(/^Unauthorized: /),
    ]);
    expect((await app.request('/_admin')).status).toBe(401);
  });

  it('the right token sets an HttpOnly, SameSite=Strict session cookie for /_admin that is not the token, and opens the page', async () => {
    const app = hostWith();
    const res = await login(app, TOKEN);
    expect([res.status, res.headers.get('location')]).toEqual([303, '/_admin']);
    const setCookie = res.headers.get('set-cookie') ?? '';
    expect(setCookie).toMatch(/; Path=\/_admin/);
    expect(setCookie).toMatch(/; HttpOnly/);
    expect(setCookie).toMatch(/; SameSite=Strict/);
    expect(setCookie).toMatch(/; Max-Age=\d+/);
    expect(setCookie).not.toMatch(/Secure/);
    const value = cookieOf(res)!;
    expect(value.length).toBeGreaterThanOrEqual(40);
    expect(setCookie).not.toContain(TOKEN);
    expect(setCookie).not.toContain(encodeURIComponent(TOKEN));

    const page = await app.request('/_admin', { headers: { ...html, cookie: `favn_admin=${value}` } });
    expect(page.status).toBe(200);
    const text = await page.text();
    expect(text).toContain('<h1>Server functions</h1>');
    expect(text).toContain('action="/_admin/logout"');
    const json = await app.request('/_admin', {
      headers: { accept: 'application/json', cookie: `favn_admin=${value}` },
    });
    expect([json.status, Object.keys((await json.json()) as object)]).toEqual([200, ['features', 'calls', 'live']]);
  });

  it('each login gets its own unguessable value; a forged or altered value opens nothing', async () => {
    const app = hostWith();
    const a = cookieOf(await login(app, TOKEN))!;
    const b = cookieOf(await login(app, TOKEN))!;
    expect(a).not.toBe(b);
    for (const forged of [`${a.slice(0, -1)}${a.endsWith('A') ? 'B' : 'A'}`, TOKEN, '', 'x'.repeat(43)]) {
      expect((await app.request('/_admin', { headers: { ...html, cookie: `favn_admin=${forged}` } })).status).toBe(401);
    }
  });

  it('a wrong token is a 401 login page and sets no cookie', async () => {
    const app = hostWith();
    for (const token of ['wrong-token-0123456789abcdef', TOKEN.slice(0, -1), `${TOKEN}x`, '']) {
      const res = await login(app, token);
      expect([res.status, res.headers.get('set-cookie')]).toEqual([401, null]);
      expect(await res.text()).toContain('That is not the admin token.');
    }
  });

  it('another site cannot post the login form (login CSRF), even with the right token', async () => {
    const app = hostWith();
    const crossSite = await login(app, TOKEN, { 'sec-fetch-site': 'cross-site', origin: 'https://evil.example' });
    expect([crossSite.status, crossSite.headers.get('set-cookie')]).toEqual([403, null]);
    expect(((await crossSite.json()) as { error: string }).error).toMatch(/^Forbidden: cross-site request refused/);
    const sameSite = await login(app, TOKEN, { 'sec-fetch-site': 'same-site', origin: 'https://other.localhost' });
    expect(sameSite.status).toBe(403);
    // An older browser without Sec-Fetch-Site: its Origin must be this host.
    const oldBrowser = await app.request('http://localhost/_admin/login', {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        host: 'localhost',
        origin: 'http://evil.example',
      },
      body: `token=${TOKEN}`,
    });
    expect([oldBrowser.status, oldBrowser.headers.get('set-cookie')]).toEqual([403, null]);
  });

  it('the login takes a form only, and a small one', async () => {
    const app = hostWith();
    const json = await login(app, TOKEN, { 'content-type': 'application/json' });
    expect(json.status).toBe(400);
    const huge = await app.request('/_admin/login', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `token=${'x'.repeat(10_000)}`,
    });
    expect(huge.status).toBe(413);
  });

  it('logout ends the session on the server, not only in the browser', async () => {
    const app = hostWith();
    const value = cookieOf(await login(app, TOKEN))!;
    const out = await app.request('/_admin/logout', {
      method: 'POST',
      headers: { 'sec-fetch-site': 'same-origin', cookie: `favn_admin=${value}` },
    });
    expect([out.status, out.headers.get('location')]).toEqual([303, '/_admin']);
    expect(out.headers.get('set-cookie')).toMatch(/^favn_admin=; Max-Age=0; Path=\/_admin; HttpOnly; SameSite=Strict/);
    expect((await app.request('/_admin', { headers: { ...html, cookie: `favn_admin=${value}` } })).status).toBe(401);
    const crossSite = await app.request('/_admin/logout', {
      method: 'POST',
      headers: { 'sec-fetch-site': 'cross-site' },
    });
    expect(crossSite.status).toBe(403);
  });

  it('the cookie is Secure when the browser came over HTTPS (directly or through a trusted proxy)', async () => {
    expect(
      (await login(hostWith(), TOKEN, {}, 'https://admin.example.com/_admin/login')).headers.get('set-cookie'),
    ).toMatch(/; Secure/);
    const proxied = hostWith({ adminToken: TOKEN, crossSite: { trustProxy: true } });
    expect((await login(proxied, TOKEN, { 'x-forwarded-proto': 'https' })).headers.get('set-cookie')).toMatch(
      /; Secure/,
    );
    expect((await login(hostWith(), TOKEN, { 'x-forwarded-proto': 'https' })).headers.get('set-cookie')).not.toMatch(
      /Secure/,
    );
  });

  it('Bearer keeps working, and a wrong Bearer token is 401 even with a session', async () => {
    const app = hostWith();
    expect(
      (await app.request('/_admin', { headers: { authorization: `Bearer ${TOKEN}`, accept: 'application/json' } }))
        .status,
    ).toBe(200);
    const value = cookieOf(await login(app, TOKEN))!;
    const wrong = await app.request('/_admin', {
      headers: { authorization: 'Bearer nope', cookie: `favn_admin=${value}` },
    });
    expect(wrong.status).toBe(401);
  });

  it('dev stays open without a login; without an admin token outside dev there is no admin and no login', async () => {
    const dev = hostWith({ dev: true });
    expect((await dev.request('/_admin', { headers: html })).status).toBe(200);
    expect((await login(dev, TOKEN)).status).toBe(404);
    const closed = hostWith({});
    expect((await closed.request('/_admin', { headers: html })).status).toBe(404);
    expect((await login(closed, TOKEN)).status).toBe(404);
  });

  it('a session expires', () => {
    let now = 0;
    const sessions = new AdminSessions({ ttlMs: 1000, now: () => now });
    const value = sessions.create();
    now = 999;
    expect(sessions.has(value)).toBe(true);
    now = 1000;
    expect(sessions.has(value)).toBe(false);
  });
});

describe('/_admin and /_health of a feature served from signed releases', () => {
  it('show the release serving and why a newer one was refused', async () => {
    const feature: ReleasedFeature = hostedFeature({ id: 'feature-x', version: '1.0.0', raw: {} }, null);
    const refused = 'https://cdn.example.com/x/releases.json: the signed index expired at 2026-01-01T00:00:00.000Z';
    feature.release = () => ({
      location: 'https://cdn.example.com/x/releases.json',
      version: '1.0.0',
      seq: 4,
      checkedAt: '2026-01-02T00:00:00.000Z',
      refused,
    });
    const app = createHost([feature], { logCall: null, adminToken: TOKEN }).app;
    const health = (await (await app.request('/_health/feature-x')).json()) as FeatureHealth;
    expect(health).toMatchObject({ error: null, release: { version: '1.0.0', seq: 4, refused } });
    const page = await app.request('/_admin', { headers: { ...html, authorization: `Bearer ${TOKEN}` } });
    const text = await page.text();
    expect(text).toContain('(signed release, seq 4)');
    expect(text).toContain(`release refused: ${refused}`);
  });
});
