import { timingSafeEqual } from 'node:crypto';
import type { Context, Hono } from 'hono';
import { getCookie } from 'hono/cookie';
import { html } from 'hono/html';
import { HTTPException } from 'hono/http-exception';
import { createCrossSiteCheck } from './auth/csrf.js';
import { devIdentityCookie } from './auth/dev-identity-cookie.js';
import { DEV_IDENTITY_COOKIE } from './dev-identity.js';
import type { CallRecord } from './call-log.js';
import { featureHealth, type FeatureHealth } from './health-route.js';
import type { HostEnv, HostState } from './host.js';

/** What `GET /_admin` returns as JSON. */
export interface AdminReport {
  features: (FeatureHealth & { declaredOnly: string[]; exportedOnly: string[] })[];
  calls: CallRecord[];
}

/**
 * Mounts `GET /_admin`: features, declared vs actual exports and recent calls, as HTML or (with
 * `Accept: application/json`) JSON. Open in dev; elsewhere only with the admin token.
 */
export function registerAdminRoutes(app: Hono<HostEnv>, state: HostState): void {
  app.get('/_admin', (c) => {
    authorizeAdmin(c, state);
    const report = adminReport(state);
    if ((c.req.header('accept') ?? '').includes('application/json')) return c.json(report);
    return c.html(renderAdmin(report, state.options.dev ? (getCookie(c, DEV_IDENTITY_COOKIE) ?? '') : null));
  });
  // Dev only: the identity picker. The cookie applies to the browser session's RPC calls.
  const checkOrigin = createCrossSiteCheck(state.options.crossSite);
  app.post('/_admin/identity', async (c) => {
    if (!state.options.dev) throw new HTTPException(404, { message: 'Not found: the dev identity is only chosen in dev' });
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
        throw new HTTPException(400, { message: 'The dev identity must be a JSON object of claims, like {"sub":"alice","roles":["admin"]}' });
      }
    }
    c.header('set-cookie', devIdentityCookie(parsed as Record<string, unknown> | null));
    return c.redirect('/_admin', 303);
  });
}

function authorizeAdmin(c: Context<HostEnv>, state: HostState): void {
  if (state.options.dev) return;
  const token = state.options.adminToken;
  const given = /^Bearer (.+)$/i.exec(c.req.header('authorization') ?? '')?.[1];
  if (!token) throw new HTTPException(404, { message: 'Not found: /_admin is served in dev or with an admin token' });
  if (!given || !sameSecret(given, token)) throw new HTTPException(401, { message: 'Unauthorized: /_admin needs "Authorization: Bearer <admin token>"' });
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
      };
    }),
    calls: state.calls.recent(),
  };
}

function renderAdmin(report: AdminReport, devIdentity: string | null) {
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>favn admin</title>
<style>body{font:14px system-ui,sans-serif;margin:2rem;color:#222}table{border-collapse:collapse;margin:.5rem 0 1.5rem}
td,th{border:1px solid #ccc;padding:.25rem .6rem;text-align:left}.bad{color:#b00020}code{font-size:13px}</style></head>
<body><h1>Server functions</h1>
<h2>Features</h2>
<table><tr><th>Feature</th><th>Mode</th><th>Declared</th><th>Exported</th><th>Loaded</th><th>Problems</th></tr>
${report.features.map(
  (f) => html`<tr><td><code>${f.featureId}</code>${f.version ? ` ${f.version}` : ''}</td><td>${f.mode}</td>
<td>${f.declared.join(', ')}</td><td>${f.exports.join(', ')}</td><td>${f.loadedAt ?? 'never'}</td>
<td class="bad">${[
    f.declaredOnly.length ? `declared, not exported: ${f.declaredOnly.join(', ')}` : '',
    f.exportedOnly.length ? `exported, not declared: ${f.exportedOnly.join(', ')}` : '',
    f.error ?? '',
  ]
    .filter(Boolean)
    .join('; ')}</td></tr>`,
)}</table>
${devIdentity === null
  ? ''
  : html`<h2>Dev identity</h2>
<p>Calls from this browser run as: <code>${devIdentity || 'anonymous'}</code></p>
<form method="post" action="/_admin/identity"><textarea name="claims" rows="3" cols="70" placeholder='{"sub":"alice","roles":["admin"],"tenant_id":"t1"}'>${devIdentity}</textarea><br>
<button type="submit">Use these claims</button> <button type="submit" name="claims" value="">Anonymous</button></form>`}
<h2>Recent calls</h2>
<table><tr><th>At</th><th>Function</th><th>Status</th><th>ms</th><th>Request id</th></tr>
${report.calls.map(
  (call) => html`<tr><td>${call.at}</td><td><code>${call.featureId}/${call.fnName}</code></td>
<td class="${call.status >= 400 ? 'bad' : ''}">${call.status}</td><td>${call.ms.toFixed(1)}</td><td><code>${call.requestId}</code></td></tr>`,
)}</table>
</body></html>`;
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
