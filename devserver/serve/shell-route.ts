import { readFile } from 'node:fs/promises';
import type { Hono } from 'hono';
import { html, raw } from 'hono/html';
import type { HostEnv } from '../host/host-state.js';

/** Where the shell lives: `GET /_shell`, and `/` sends a browser there. */
export const SHELL_PATH = '/_shell';

/** The shipped browser modules the shell page loads: the relay and what it imports. */
const SHELL_MODULES = new Set(['relay.js', 'protocol.js', 'live-client.js', 'rpc-error.js']);

/** Compiled layout: dist/devserver/serve/shell-route.js -> dist/runtime/<name>.js */
const RUNTIME_DIR = new URL('../../runtime/', import.meta.url);

/** The shell page is the top of the stack: it frames features, nothing frames it. */
const SHELL_HEADERS = {
  'cache-control': 'no-store',
  'x-frame-options': 'DENY',
  'content-security-policy': "frame-ancestors 'none'",
} as const;

/**
 * `favn serve` as a platform shell: `GET /_shell` lists the features that have a page and opens one
 * in a sandboxed iframe (`allow-scripts`, opaque origin) whose calls go through the relay, as a
 * platform runs it. `GET /` redirects there.
 *
 * @example
 * registerShellRoutes(app, [{ id: 'feature-rules', page: '/feature-rules/' }])
 */
export function registerShellRoutes(app: Hono<HostEnv>, features: Array<{ id: string; page: string }>): void {
  app.get('/', (c) => c.redirect(SHELL_PATH, 302));
  registerShellPage(app, () => features);
}

/**
 * Only the shell page and its modules (`vite` dev mounts it beside the feature's own page at `/`).
 *
 * @example
 * registerShellPage(host.app, () => [{ id: manifest.id, page: '/' }])
 */
export function registerShellPage(app: Hono<HostEnv>, features: () => Array<{ id: string; page: string }>): void {
  app.get(SHELL_PATH, (c) => c.html(renderShell(features()), 200, SHELL_HEADERS));
  app.get(`${SHELL_PATH}/:file`, async (c) => {
    const file = c.req.param('file');
    if (!SHELL_MODULES.has(file)) return c.notFound();
    const code = await readFile(new URL(file, RUNTIME_DIR), 'utf8');
    return c.body(code, 200, { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'no-cache' });
  });
}

function renderShell(features: Array<{ id: string; page: string }>) {
  const list = JSON.stringify(features).replaceAll('<', '\\u003c');
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <title>favn shell</title>
        <style>
          body {
            font:
              14px system-ui,
              sans-serif;
            margin: 0;
            display: flex;
            height: 100vh;
          }
          nav {
            width: 16rem;
            padding: 1rem;
            border-right: 1px solid #ddd;
          }
          iframe {
            flex: 1;
            border: 0;
          }
        </style>
      </head>
      <body>
        <nav>
          <h1>Features</h1>
          <ul id="features"></ul>
          <p><small>Each opens in a sandboxed iframe; its calls go through the host's relay.</small></p>
        </nav>
        <iframe id="feature" title="feature" sandbox="allow-scripts allow-forms"></iframe>
        <script type="module">
          import { embedFeature } from '${SHELL_PATH}/relay.js';
          const features = ${raw(list)};
          let frame = document.getElementById('feature');
          let embedded = null;
          function open(id) {
            const feature = features.find((f) => f.id === id);
            if (!feature) return;
            embedded?.close();
            // A new iframe per feature: the old one's document must not outlive the switch.
            const fresh = frame.cloneNode(false);
            fresh.removeAttribute('src');
            frame.replaceWith(fresh);
            frame = fresh;
            embedded = embedFeature({ iframe: frame, featureId: feature.id, src: feature.page });
            history.replaceState(null, '', '?feature=' + encodeURIComponent(feature.id));
          }
          for (const { id } of features) {
            const item = document.createElement('li');
            const link = document.createElement('a');
            link.href = '?feature=' + encodeURIComponent(id);
            link.textContent = id;
            link.addEventListener('click', (event) => {
              event.preventDefault();
              open(id);
            });
            item.append(link);
            document.getElementById('features').append(item);
          }
          open(new URLSearchParams(location.search).get('feature') ?? features[0]?.id);
        </script>
      </body>
    </html>`;
}
