import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REQUEST_ID_HEADER } from '../../runtime/protocol.js';
import { defineSchema } from '../../runtime/schema.js';
import { v } from '../../runtime/validators.js';
import { migrate } from '../data/migrate.js';
import { openPglite } from '../data/pglite-client.js';
import type { SqlClient } from '../data/sql-client.js';
import { hostedFeature } from '../feature/hosted-feature.js';
import { createHost, type Host } from './host.js';
import { FeatureData } from '../data/feature-data.js';
import { modelSchema } from '../data/table-model.js';

let client: SqlClient;
let host: Host;

beforeAll(async () => {
  client = await openPglite(null);
  const model = modelSchema(
    'feature-x',
    defineSchema({}, { storage: { theme: v.optional(v.string()), extra: v.optional(v.json()) } }),
  );
  await migrate(client, model);
  const feature = hostedFeature(
    { id: 'feature-x', raw: { id: 'feature-x' } },
    null,
    {},
    new FeatureData(client, model),
  );
  host = createHost([feature], { logCall: null });
});
afterAll(async () => {
  await client?.close();
});

const put = (body: string, headers: Record<string, string>) =>
  host.app.request('/_storage/feature-x', { method: 'PUT', headers, body });

describe('PUT /_storage/{featureId}: the settings document', () => {
  it('takes JSON only: a text/plain body (what a cross-site form or no-cors fetch sends) is 400', async () => {
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', '']) {
      const res = await put('{"theme":"dark"}', type ? { 'content-type': type } : {});
      expect([type, res.status]).toEqual([type, 400]);
      const body = (await res.json()) as { error: string; requestId: string };
      expect(body.error).toMatch(/^Malformed RPC request: Content-Type must be application\/json/);
      expect(res.headers.get(REQUEST_ID_HEADER)).toBe(body.requestId);
    }
    const stored = await host.app.request('/_storage/feature-x');
    expect(await stored.json()).toEqual({});
  });

  it('stores a JSON document sent as application/json or a +json type', async () => {
    const res = await put('{"theme":"dark"}', { 'content-type': 'application/json; charset=utf-8' });
    expect([res.status, await res.json()]).toEqual([200, { theme: 'dark' }]);
    const merge = await put('{"theme":"light"}', { 'content-type': 'application/merge-patch+json' });
    expect(merge.status).toBe(200);
    expect(await (await host.app.request('/_storage/feature-x')).json()).toEqual({ theme: 'light' });
  });

  it('refuses a document nested deeper than 64 levels with 400 before parsing it', async () => {
    const deep = (n: number) => `{"extra":${'['.repeat(n)}${']'.repeat(n)}}`;
    const refused = await put(deep(64), { 'content-type': 'application/json' });
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as { error: string }).error).toBe(
      'Malformed RPC request: the settings document nests deeper than 64 levels',
    );
    const hostile = await put(deep(100_000), { 'content-type': 'application/json' });
    expect(hostile.status).toBe(400);
    // 63 array levels inside the object: 64 in all, the most allowed.
    const ok = await put(deep(63), { 'content-type': 'application/json' });
    expect(ok.status).toBe(200);
  });
});
