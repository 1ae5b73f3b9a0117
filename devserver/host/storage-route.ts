import type { Context, Hono } from 'hono';
import { LIVE_HEADER, STORAGE_PREFIX } from '../../runtime/protocol.js';
import { RequestError } from '../../runtime/request-error.js';
import { formatIssues } from '../../runtime/validators.js';
import { STORAGE_TABLE } from '../data/migrate.js';
import type { HostedFeature } from '../feature/hosted-feature.js';
import type { HostEnv, HostState } from './host-state.js';
import { readBody, refuseCallsFromActions } from './read-body.js';
import { createCrossSiteCheck } from '../auth/csrf.js';
import { jsonDepthExceeds, MAX_JSON_DEPTH } from '../common/json-depth.js';
import { quoteIdent, storableIssues } from '../data/table-model.js';
import type { Identity } from '../auth/identity.js';
import { groupKey } from '../live/live-hub.js';
import { outcomeOf } from './live-route.js';

/** The document of an installation, as JSON text (`{}` before the first save). */
async function readDocument(feature: HostedFeature, key: string, table: string): Promise<string> {
  const rows = await feature.data!.client.transaction(
    feature.data!.model.role,
    (q) => q(`SELECT "doc" FROM ${table} WHERE "key" = $1`, [key]),
    { readOnly: true },
  );
  return JSON.stringify(rows[0]?.doc ?? {});
}

/** `application/json` or a `+json` type, as on the RPC route. */
const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\b/i;

/**
 * `GET|PUT /_storage/{featureId}`: the feature's settings document (`useExtensionStorage()`),
 * one per installation (feature + tenant), validated against `defineSchema(..., { storage })`.
 */
export function registerStorageRoutes(app: Hono<HostEnv>, state: HostState): void {
  app.get(`${STORAGE_PREFIX}/:featureId`, async (c) => {
    const { feature, key, table, identity } = await storageOf(c, state);
    const header = c.req.header(LIVE_HEADER);
    const live = header === undefined ? null : state.live.check(header, feature.id, identity);
    const since = state.live.seq;
    const json = await readDocument(feature, key, table);
    if (live === null) return c.body(json, 200, { 'content-type': 'application/json' });
    let answer: true | string = live as string;
    if (typeof live !== 'string') {
      // The settings document is live like a query: a save re-reads it for every page of the installation.
      const featureId = feature.id;
      const tables = new Set([STORAGE_TABLE]);
      answer = state.live.subscribe({
        ...live,
        featureId,
        identity,
        key: groupKey(featureId, STORAGE_PREFIX, '', identity),
        tables,
        json,
        since,
        run: () =>
          outcomeOf(
            async () => {
              const current = state.features.get(featureId);
              if (!current?.data?.model.storage) throw RequestError.of('featureNotFound', undefined, featureId);
              return { json: await readDocument(current, key, table), tables, wrote: false };
            },
            state,
            `${featureId} settings document`,
          ),
      });
    }
    return c.body(json, 200, {
      'content-type': 'application/json',
      [LIVE_HEADER]: answer === true ? 'on' : `off; ${answer}`,
    });
  });
  const checkOrigin = createCrossSiteCheck(state.options.crossSite);
  app.put(`${STORAGE_PREFIX}/:featureId`, async (c) => {
    checkOrigin(c.req.raw.headers, c.req.url);
    const { feature, key, table } = await storageOf(c, state);
    state.live.watch(feature.id, feature.data);
    const doc = parseDocument(c, await readBody(c, state.options.bodyLimit));
    // Checked like a column: PostgreSQL's jsonb refuses NUL and lone surrogates.
    const check = feature.data!.model.storage!.check(doc, ['storage']);
    const issues = check.length ? check : storableIssues(doc, ['storage']);
    if (issues.length) throw RequestError.of('invalidArguments', formatIssues(issues));
    await feature.data!.client.transaction(
      feature.data!.model.role,
      (q) =>
        q(
          `INSERT INTO ${table} ("key", "doc") VALUES ($1, $2::jsonb) ON CONFLICT ("key") DO UPDATE SET "doc" = EXCLUDED."doc", "updatedAt" = now()`,
          [key, JSON.stringify(doc)],
        ),
      { tenantId: key === '' ? null : key },
    );
    return c.json(doc);
  });
}

async function storageOf(
  c: Context<HostEnv>,
  state: HostState,
): Promise<{ feature: HostedFeature; key: string; table: string; identity: Identity }> {
  refuseCallsFromActions(c);
  const featureId = c.req.param('featureId') ?? '';
  const feature = state.features.get(featureId);
  if (!feature) throw RequestError.of('featureNotFound', undefined, featureId);
  // As on the RPC route: a feature that failed its integrity check runs nothing, and a caller
  // refused with 401 makes the host load nothing.
  if (feature.unavailableReason) throw RequestError.of('unavailable', feature.unavailableReason);
  const identity = await state.options.identify(c, feature);
  // Its tables (the settings document among them) are known once a feature loaded on first need has.
  await feature.ready?.();
  if (!feature.data?.model.storage) {
    const fix = 'declare it with defineSchema({...}, { storage: {...} })';
    throw new RequestError(404, `Feature "${featureId}" has no settings document: ${fix}`);
  }
  return {
    feature,
    key: identity.tenantId ?? '',
    identity,
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
