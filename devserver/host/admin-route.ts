import type { Context, Hono } from 'hono';
import { getCookie } from 'hono/cookie';
import { html } from 'hono/html';
import { RequestError } from '../../runtime/request-error.js';
import { ADMIN_PAGE_HEADERS, renderAdminLogin } from './admin-login-page.js';
import { ADMIN_SESSION_COOKIE, AdminSessions, sameSecret } from './admin-session.js';
import { createCrossSiteCheck } from '../auth/csrf.js';
import { devIdentityCookie } from '../auth/dev-identity-cookie.js';
import { DEV_IDENTITY_COOKIE } from '../auth/dev-identity.js';
import type { CallRecord } from './call-log.js';
import { featureHealth, type FeatureHealth } from './health-route.js';
import type { HostEnv, HostState } from './host-state.js';
import { readBody } from './read-body.js';
import type { IsolatePoolStats } from '../isolate/isolate-pool.js';

/** What `GET /_admin` returns as JSON. */
export interface AdminReport {
  features: (FeatureHealth & { declaredOnly: string[]; exportedOnly: string[]; isolates: IsolatePoolStats | null })[];
  calls: CallRecord[];
  /** Live queries on this host: open push connections, subscriptions, and the groups that re-run. */
  live: { connections: number; subscriptions: number; groups: number };
}

/** A login form is a few dozen bytes; anything larger is not one. */
const LOGIN_BODY_LIMIT = 4096;

/** How a request got into `/_admin`. */
type AdminAccess = 'dev' | 'bearer' | 'session';

/**
 * Mounts `GET /_admin`: features, declared vs actual exports and recent calls, as HTML or (with
 * `Accept: application/json`) JSON. Open in dev; elsewhere only with the admin token, sent as
 * `Authorization: Bearer <token>` or typed once into the login form (`POST /_admin/login`), which
 * starts a session held in an HttpOnly, SameSite=Strict cookie (`POST /_admin/logout` ends it).
 */
export function registerAdminRoutes(app: Hono<HostEnv>, state: HostState): void {
  const sessions = new AdminSessions();
  const checkOrigin = createCrossSiteCheck(state.options.crossSite);
  app.get('/_admin', (c) => {
    const access = adminAccess(c, state, sessions);
    if (!access) return c.html(renderAdminLogin(null), 401, ADMIN_PAGE_HEADERS);
    const report = adminReport(state);
    if ((c.req.header('accept') ?? '').includes('application/json')) return c.json(report, 200, ADMIN_PAGE_HEADERS);
    const devIdentity = state.options.dev ? (getCookie(c, DEV_IDENTITY_COOKIE) ?? '') : null;
    return c.html(renderAdmin(report, devIdentity, access === 'session'), 200, ADMIN_PAGE_HEADERS);
  });
  app.post('/_admin/login', async (c) => {
    const token = state.options.adminToken;
    if (!token) throw new RequestError(404, 'Not found: /_admin has no login without an admin token');
    // Another site must not log a browser in (login CSRF), nor try tokens through it.
    checkOrigin(c.req.raw.headers, c.req.url);
    const type = c.req.header('content-type') ?? '';
    if (!/^application\/x-www-form-urlencoded\b/i.test(type)) {
      throw RequestError.of('malformed', 'the login is a form (application/x-www-form-urlencoded) with "token"');
    }
    const given = new URLSearchParams(await readBody(c, LOGIN_BODY_LIMIT)).get('token') ?? '';
    if (!sameSecret(given, token)) {
      return c.html(renderAdminLogin('That is not the admin token.'), 401, ADMIN_PAGE_HEADERS);
    }
    c.header('set-cookie', sessions.cookie(sessions.create(), { secure: isHttps(c, state) }));
    return c.redirect('/_admin', 303);
  });
  app.post('/_admin/logout', (c) => {
    checkOrigin(c.req.raw.headers, c.req.url);
    sessions.end(getCookie(c, ADMIN_SESSION_COOKIE));
    c.header('set-cookie', sessions.clearCookie({ secure: isHttps(c, state) }));
    return c.redirect('/_admin', 303);
  });
  // Dev only: the identity picker. The cookie applies to the browser session's RPC calls.
  app.post('/_admin/identity', async (c) => {
    if (!state.options.dev) throw new RequestError(404, 'Not found: the dev identity is only chosen in dev');
    checkOrigin(c.req.raw.headers, c.req.url);
    const form = await c.req.parseBody();
    const claims = typeof form.claims === 'string' ? form.claims.trim() : '';
    let parsed: unknown = null;
    if (claims) {
      try {
        parsed = JSON.parse(claims);
      } catch {
        parsed = [];
      }
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
        const example = '{"sub":"alice","roles":["admin"]}';
        throw new RequestError(400, `The dev identity must be a JSON object of claims, like ${example}`);
      }
    }
    c.header('set-cookie', devIdentityCookie(parsed as Record<string, unknown> | null));
    return c.redirect('/_admin', 303);
  });
}

/**
 * How the request may see `/_admin`, or null when a browser should get the login form. Other
 * clients without credentials, and a wrong Bearer token, get 401 JSON; no admin token: 404.
 */
function adminAccess(c: Context<HostEnv>, state: HostState, sessions: AdminSessions): AdminAccess | null {
  if (state.options.dev) return 'dev';
  const token = state.options.adminToken;
  if (!token) throw new RequestError(404, 'Not found: /_admin is served in dev or with an admin token');
  const given = /^Bearer (.+)$/i.exec(c.req.header('authorization') ?? '')?.[1];
  if (given !== undefined) {
    if (sameSecret(given, token)) return 'bearer';
    throw RequestError.of('unauthorized', 'wrong admin token');
  }
  if (sessions.has(getCookie(c, ADMIN_SESSION_COOKIE))) return 'session';
  const accept = c.req.header('accept') ?? '';
  if (accept.includes('text/html') && !accept.includes('application/json')) return null;
  const fix = '/_admin needs "Authorization: Bearer <admin token>", or log in at /_admin in a browser';
  throw RequestError.of('unauthorized', fix);
}

/** The session cookie is `Secure` when the browser reached the host over HTTPS. */
function isHttps(c: Context<HostEnv>, state: HostState): boolean {
  if (c.req.url.startsWith('https:')) return true;
  if (!state.options.crossSite.trustProxy) return false;
  return c.req.header('x-forwarded-proto')?.split(',')[0]?.trim().toLowerCase() === 'https';
}

function adminReport(state: HostState): AdminReport {
  return {
    features: [...state.features.values()].map((feature) => {
      const health = featureHealth(feature);
      const actual = new Set(health.exports);
      return {
        ...health,
        declaredOnly: health.declared.filter((n) => !actual.has(n)),
        exportedOnly: health.exports.filter((n) => !feature.declared.has(n)),
        isolates: feature.isolates?.() ?? null,
      };
    }),
    calls: state.calls.recent(),
    live: state.live.stats(),
  };
}

function renderAdmin(report: AdminReport, devIdentity: string | null, loggedIn: boolean) {
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <title>favn admin</title>
        <style>
          body {
            font:
              14px system-ui,
              sans-serif;
            margin: 2rem;
            color: #222;
          }
          table {
            border-collapse: collapse;
            margin: 0.5rem 0 1.5rem;
          }
          td,
          th {
            border: 1px solid #ccc;
            padding: 0.25rem 0.6rem;
            text-align: left;
          }
          .bad {
            color: #b00020;
          }
          code {
            font-size: 13px;
          }
        </style>
      </head>
      <body>
        <h1>Server functions</h1>
        ${loggedIn ? html`<form method="post" action="/_admin/logout"><button type="submit">Log out</button></form>` : ''}
        <h2>Features</h2>
        <table>
          <tr>
            <th>Feature</th>
            <th>Mode</th>
            <th>Declared</th>
            <th>Exported</th>
            <th>Loaded</th>
            <th>Isolates</th>
            <th>Problems</th>
          </tr>
          ${report.features.map(
            (f) =>
              html`<tr>
                <td>
                  <code>${f.featureId}</code>${f.version ? ` ${f.version}` : ''}${
                    f.release?.seq ? ` (signed release, seq ${f.release.seq})` : ''
                  }
                </td>
                <td>${f.mode}</td>
                <td>${f.declared.join(', ')}</td>
                <td>${f.exports.join(', ')}</td>
                <td>${f.loadedAt ?? 'never'}</td>
                <td>
                  ${f.isolates ? `${f.isolates.isolates} of ${f.isolates.max} (${f.isolates.idle} idle, peak ${f.isolates.peak}, ${f.isolates.waiting} waiting)` : ''}
                </td>
                <td class="bad">
                  ${[
                    f.declaredOnly.length ? `declared, not exported: ${f.declaredOnly.join(', ')}` : '',
                    f.exportedOnly.length ? `exported, not declared: ${f.exportedOnly.join(', ')}` : '',
                    f.error ?? '',
                    f.release?.refused && !f.error ? `release refused: ${f.release.refused}` : '',
                  ]
                    .filter(Boolean)
                    .join('; ')}
                </td>
              </tr>`,
          )}
        </table>
        ${
          devIdentity === null
            ? ''
            : html`<h2>Dev identity</h2>
                <p>Calls from this browser run as: <code>${devIdentity || 'anonymous'}</code></p>
                <form method="post" action="/_admin/identity">
                  <textarea
                    name="claims"
                    rows="3"
                    cols="70"
                    placeholder='{"sub":"alice","roles":["admin"],"tenant_id":"t1"}'
                  >
${devIdentity}</textarea
                  ><br />
                  <button type="submit">Use these claims</button>
                  <button type="submit" name="claims" value="">Anonymous</button>
                </form>`
        }
        <h2>Live queries</h2>
        <p>
          ${report.live.connections} connections, ${report.live.subscriptions} subscriptions in ${report.live.groups}
          groups
        </p>
        <h2>Recent calls</h2>
        <table>
          <tr>
            <th>At</th>
            <th>Function</th>
            <th>Status</th>
            <th>ms</th>
            <th>Request id</th>
          </tr>
          ${report.calls.map(
            (call) =>
              html`<tr>
                <td>${call.at}</td>
                <td><code>${call.featureId}/${call.fnName}</code></td>
                <td class="${call.status >= 400 ? 'bad' : ''}">${call.status}</td>
                <td>${call.ms.toFixed(1)}</td>
                <td><code>${call.requestId}</code></td>
              </tr>`,
          )}
        </table>
      </body>
    </html>`;
}
