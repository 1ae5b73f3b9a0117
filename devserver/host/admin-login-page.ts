import { html } from 'hono/html';
import type { HtmlEscapedString } from 'hono/utils/html';

/** Headers of every `/_admin` page: never cached, never framed by another site (clickjacking). */
export const ADMIN_PAGE_HEADERS = {
  'cache-control': 'no-store',
  'x-frame-options': 'DENY',
  'content-security-policy': "frame-ancestors 'none'",
} as const;

/**
 * The page a browser gets at `/_admin` without a session: one field for the admin token, posted
 * to `/_admin/login`. `problem` says why the last attempt failed (never echoing what was typed).
 *
 * @example
 * c.html(renderAdminLogin(null), 401, ADMIN_PAGE_HEADERS)
 */
export function renderAdminLogin(problem: string | null): HtmlEscapedString | Promise<HtmlEscapedString> {
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <title>favn admin: log in</title>
        <style>
          body {
            font:
              14px system-ui,
              sans-serif;
            margin: 2rem;
            color: #222;
          }
          .bad {
            color: #b00020;
          }
          input {
            width: 24rem;
          }
        </style>
      </head>
      <body>
        <h1>Server functions admin</h1>
        <p>
          Enter the admin token of this host (<code>--admin-token</code>, <code>FAVN_ADMIN_TOKEN</code> or
          <code>adminToken</code> of <code>favn.config.json</code>).
        </p>
        ${problem ? html`<p class="bad" role="alert">${problem}</p>` : ''}
        <form method="post" action="/_admin/login">
          <label
            >Admin token <input type="password" name="token" autocomplete="current-password" required autofocus
          /></label>
          <button type="submit">Log in</button>
        </form>
      </body>
    </html>`;
}
