import type { Context, Hono } from 'hono';
import { STORAGE_PREFIX } from '../../runtime/protocol.js';
import { RequestError } from '../../runtime/request-error.js';
import { formatIssues } from '../../runtime/validators.js';
import { STORAGE_TABLE } from '../data/migrate.js';
import type { HostedFeature } from '../feature/hosted-feature.js';
import type { HostEnv, HostState } from './host-state.js';
import { readBody, refuseCallsFromActions } from './read-body.js';
import { createCrossSiteCheck } from '../auth/csrf.js';
import { jsonDepthExceeds, MAX_JSON_DEPTH } from '../common/json-depth.js';
import { quoteIdent, storableIssues } from '../data/table-model.js';

/** `application/json` or a `+json` type, as on the RPC route. */
const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\b/i;

/**
 * `GET|PUT /_storage/{featureId}`: the feature's settings document (`useExtensionStorage()`),
 * one per installation (feature + tenant), validated against `defineSchema(..., { storage })`.
 */
export function registerStorageRoutes(app: Hono<HostEnv>, state: HostState): void {
  app.get(`${STORAGE_PREFIX}/:featureId`, async (c) => {
    const { feature, key, table } = await storageOf(c, state);
    const rows = await feature.data!.client.transaction(
      feature.data!.model.role,
      (q) => q(`SELECT "doc" FROM ${table} WHERE "key" = $1`, [key]),
      { readOnly: true },
    );
    return c.json(rows[0]?.doc ?? {});
  });
  const checkOrigin = createCrossSiteCheck(state.options.crossSite);
  app.put(`${STORAGE_PREFIX}/:featureId`, async (c) => {
    checkOrigin(c.req.raw.headers, c.req.url);
    const { feature, key, table } = await storageOf(c, state);
    const doc = parseDocument(c, await readBody(c, state.options.bodyLimit));
    // Checked like a column: PostgreSQL's jsonb refuses NUL and lone surrogates.
    const check = feature.data!.model.storage!.check(doc, ['storage']);
    const issues = check.length ? check : storableIssues(doc, ['storage']);
    if (issues.length) throw RequestError.of('invalidArguments', formatIssues(issues));
    await feature.data!.client.transaction(feature.data!.model.role, (q) =>
      q(
        `INSERT INTO ${table} ("key", "doc") VALUES ($1, $2::jsonb) ON CONFLICT ("key") DO UPDATE SET "doc" = EXCLUDED."doc", "updatedAt" = now()`,
        [key, JSON.stringify(doc)],
      ),
    );
    return c.json(doc);
  });
}

async function storageOf(
  c: Context<HostEnv>,
  state: HostState,
): Promise<{ feature: HostedFeature; key: string; table: string }> {
  refuseCallsFromActions(c);
  const featureId = c.req.param('featureId') ?? '';
  const feature = state.features.get(featureId);
  if (!feature) throw RequestError.of('featureNotFound', undefined, featureId);
  if (!feature.data?.model.storage) {
    const fix = 'declare it with defineSchema({...}, { storage: {...} })';
    throw new RequestError(404, `Feature "${featureId}" has no settings document: ${fix}`);
  }
  const identity = await state.options.identify(c, feature);
  return {
    feature,
    key: identity.tenantId ?? '',
    table: `${quoteIdent(feature.data.model.schema)}.${quoteIdent(STORAGE_TABLE)}`,
  };
}

/** The body of a PUT: JSON only (like RPC, so a form cannot post it), at most 64 levels deep. */
function parseDocument(c: Context<HostEnv>, text: string): unknown {
  const type = c.req.header('content-type') ?? '';
  if (!JSON_TYPE.test(type)) {
    const got = JSON.stringify(type.slice(0, 100));
    throw RequestError.of('malformed', `Content-Type must be application/json (got ${got})`);
  }
  // Counted on the text: parsing (and later checking) a hostile nesting is what must not happen.
  if (jsonDepthExceeds(text)) {
    throw RequestError.of('malformed', `the settings document nests deeper than ${MAX_JSON_DEPTH} levels`);
  }
  try {
    return JSON.parse(text);
  } catch {
    throw RequestError.of('malformed', 'the settings document must be a JSON object');
  }
}
