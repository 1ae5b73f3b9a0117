import type { Context, Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { HTTPException } from 'hono/http-exception';
import { ErrorText, STORAGE_PREFIX } from '../runtime/protocol.js';
import { formatIssues } from '../runtime/validators.js';
import { STORAGE_TABLE } from './db/migrate.js';
import type { HostedFeature } from './feature.js';
import type { HostEnv, HostState } from './host.js';
import { quoteIdent } from './sql/table-model.js';

/**
 * `GET|PUT /_storage/{featureId}`: the feature's settings document (`useExtensionStorage()`),
 * one per installation (feature + tenant), validated against `defineSchema(..., { storage })`.
 */
export function registerStorageRoutes(app: Hono<HostEnv>, state: HostState): void {
  app.get(`${STORAGE_PREFIX}/:featureId`, async (c) => {
    const { feature, key, table } = await storageOf(c, state);
    const rows = await feature.data!.client.transaction(feature.data!.model.role, (q) => q(`SELECT "doc" FROM ${table} WHERE "key" = $1`, [key]), { readOnly: true });
    return c.json(rows[0]?.doc ?? {});
  });
  const limit = bodyLimit({
    maxSize: state.options.bodyLimit,
    onError: () => {
      throw new HTTPException(413, { message: `${ErrorText.payloadTooLarge}: the settings document is over ${state.options.bodyLimit} bytes` });
    },
  });
  app.put(`${STORAGE_PREFIX}/:featureId`, limit, async (c) => {
    const { feature, key, table } = await storageOf(c, state);
    let doc: unknown;
    try {
      doc = await c.req.json();
    } catch {
      throw new HTTPException(400, { message: `${ErrorText.malformed}: the settings document must be a JSON object` });
    }
    const issues = feature.data!.model.storage!.check(doc, ['storage']);
    if (issues.length) throw new HTTPException(422, { message: `${ErrorText.invalidArguments}: ${formatIssues(issues)}` });
    await feature.data!.client.transaction(feature.data!.model.role, (q) =>
      q(`INSERT INTO ${table} ("key", "doc") VALUES ($1, $2::jsonb) ON CONFLICT ("key") DO UPDATE SET "doc" = EXCLUDED."doc", "updatedAt" = now()`, [key, JSON.stringify(doc)]),
    );
    return c.json(doc);
  });
}

async function storageOf(c: Context<HostEnv>, state: HostState): Promise<{ feature: HostedFeature; key: string; table: string }> {
  const featureId = c.req.param('featureId') ?? '';
  const feature = state.features.get(featureId);
  if (!feature) throw new HTTPException(404, { message: ErrorText.featureNotFound(featureId) });
  if (!feature.data?.model.storage) {
    throw new HTTPException(404, { message: `Feature "${featureId}" has no settings document: declare it with defineSchema({...}, { storage: {...} })` });
  }
  const identity = await state.options.identify(c, feature);
  return { feature, key: identity.tenantId ?? '', table: `${quoteIdent(feature.data.model.schema)}.${quoteIdent(STORAGE_TABLE)}` };
}
