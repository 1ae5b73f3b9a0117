import { describe, expect, it } from 'vitest';
import { REQUEST_ID_HEADER } from '../../runtime/protocol.js';
import { createHost } from '../host/host.js';
import { FeatureRuntime } from '../feature/feature-runtime.js';
import { createHostCheck, type HostCheckOptions } from './host-check.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A host with one feature whose `echo` returns its argument, behind the host check. */
function hostWith(options: HostCheckOptions) {
  const echo = async (_ctx: unknown, value: unknown) => value;
  const manifest = {
    id: 'feature-x',
    raw: { id: 'feature-x' },
    serverFunctions: { module: 'x.js', exports: ['echo'] },
  };
  const runtime = new FeatureRuntime(manifest, {
    modules: () => [{ file: 'x.js', exportNames: ['echo'], load: () => ({ echo }) }],
  });
  void runtime.load();
  const feature = runtime.feature;
  const host = createHost([feature], {
    logCall: null,
    before(app) {
      app.use('*', createHostCheck(options));
      app.get('/feature-x/', (c) => c.html('<p>page</p>'));
    },
  });
  return { app: host.app };
}

const call = (app: ReturnType<typeof hostWith>['app'], url: string, headers: Record<string, string>) =>
  app.request(
    new Request(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: '{"args":["hi"]}',
    }),
  );

describe('favn serve: the Host check (DNS rebinding)', () => {
  it('refuses a rebinding page: its Origin matches its own Host, so only the Host check stops it', async () => {
    const { app } = hostWith({});
    const res = await call(app, 'http://evil.example/rpc/feature-x/echo', {
      host: 'evil.example',
      origin: 'http://evil.example',
    });
    expect(res.status).toBe(403);
    const body = (await res.json()) as { error: string; requestId: string };
    expect(body.error).toMatch(
      /^Forbidden: host "evil\.example" is not allowed; .*"allowedHosts" in favn\.config\.json or to --allowed-hosts/,
    );
    expect(body.requestId).toMatch(UUID);
    expect(res.headers.get(REQUEST_ID_HEADER)).toBe(body.requestId);
  });

  it('lets the same call through on localhost, an IP address, a listed name and the --host name', async () => {
    const { app } = hostWith({
      allowedHosts: ['.example.com'],
      listenHost: 'box.internal',
      publicHost: 'public.example.net:8443',
    });
    for (const host of [
      'localhost:3000',
      '127.0.0.1:3000',
      '[::1]:3000',
      'api.example.com',
      'box.internal:3000',
      'public.example.net',
    ]) {
      const res = await call(app, `http://${host}/rpc/feature-x/echo`, { host, origin: `http://${host}` });
      expect([host, res.status, await res.text()]).toEqual([host, 200, '"hi"']);
    }
  });

  it('checks every path: static pages, /_health and /_admin too', async () => {
    const { app } = hostWith({});
    for (const path of ['/feature-x/', '/_health', '/_admin', '/_storage/feature-x', '/nothing']) {
      const res = await app.request(new Request(`http://evil.example${path}`, { headers: { host: 'evil.example' } }));
      expect([path, res.status]).toEqual([path, 403]);
      expect(((await res.json()) as { requestId: string }).requestId).toBe(res.headers.get(REQUEST_ID_HEADER));
    }
    expect(
      (await app.request(new Request('http://localhost/feature-x/', { headers: { host: 'localhost' } }))).status,
    ).toBe(200);
  });

  it('keeps a safe incoming x-request-id on the refusal, and replaces an unsafe one', async () => {
    const { app } = hostWith({});
    const kept = await call(app, 'http://evil.example/rpc/feature-x/echo', {
      host: 'evil.example',
      [REQUEST_ID_HEADER]: 'trace-42',
    });
    expect([kept.status, kept.headers.get(REQUEST_ID_HEADER)]).toEqual([403, 'trace-42']);
    const replaced = await call(app, 'http://evil.example/rpc/feature-x/echo', {
      host: 'evil.example',
      [REQUEST_ID_HEADER]: '<script>',
    });
    expect(replaced.headers.get(REQUEST_ID_HEADER)).toMatch(UUID);
  });

  it('refuses a missing Host, two Host values, and an absolute-form target that names another host', async () => {
    const { app } = hostWith({});
    const missing = await app.request(new Request('http://localhost/_health'));
    expect([missing.status, ((await missing.json()) as { error: string }).error]).toEqual([
      403,
      'Forbidden: the request has no Host header',
    ]);
    expect(
      (await app.request(new Request('http://localhost/_health', { headers: { host: 'localhost, evil.example' } })))
        .status,
    ).toBe(403);
    // `GET http://evil.example/_health HTTP/1.1` with `Host: localhost`: the server sees the target's host.
    const absolute = await app.request(new Request('http://evil.example/_health', { headers: { host: 'localhost' } }));
    expect(absolute.status).toBe(403);
    expect(((await absolute.json()) as { error: string }).error).toMatch(/host "evil\.example" is not allowed/);
  });

  it('allowedHosts: true allows any host', async () => {
    const { app } = hostWith({ allowedHosts: true });
    expect((await call(app, 'http://evil.example/rpc/feature-x/echo', { host: 'evil.example' })).status).toBe(200);
  });
});
