import type { Context, Hono } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { ErrorText, STORAGE_PREFIX } from '../runtime/protocol.js';
import { formatIssues } from '../runtime/validators.js';
import { STORAGE_TABLE } from './db/migrate.js';
import type { HostedFeature } from './feature.js';
import type { HostEnv, HostState } from './host.js';
import { readBody } from './read-body.js';
import { createCrossSiteCheck } from './auth/csrf.js';
import { quoteIdent, storableIssues } from './sql/table-model.js';

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
  const checkOrigin = createCrossSiteCheck(state.options.crossSite);
  app.put(`${STORAGE_PREFIX}/:featureId`, async (c) => {
    checkOrigin(c.req.raw.headers, c.req.url);
    const { feature, key, table } = await storageOf(c, state);
    const text = await readBody(c, state.options.bodyLimit);
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch {
      throw new HTTPException(400, { message: `${ErrorText.malformed}: the settings document must be a JSON object` });
    }
    // Checked like a column: PostgreSQL's jsonb refuses NUL and lone surrogates.
    const check = feature.data!.model.storage!.check(doc, ['storage']);
    const issues = check.length ? check : storableIssues(doc, ['storage']);
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
