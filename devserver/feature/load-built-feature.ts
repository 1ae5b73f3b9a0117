import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { EndpointExecutor } from '../executors/endpoint-executor.js';
import { hostedFeature, type HostedFeature } from './hosted-feature.js';
import { readManifest } from './manifest.js';
import { ModuleExecutor } from '../executors/module-executor.js';
import { migrate } from '../data/migrate.js';
import type { SqlClient } from '../data/sql-client.js';
import { declarativeAdapter } from '../executors/declarative-executor.js';
import { combineAdapters, handlerAdapter } from '../executors/isolate-executor.js';
import { IsolateRunner } from '../isolate/isolate-runner.js';
import { FeatureData } from '../data/feature-data.js';
import { modelSchema } from '../data/table-model.js';
import type { SchemaDefinition } from '../../runtime/schema.js';

/** Export of a server bundle that carries the feature's `server/schema.ts`. */
const SCHEMA_EXPORT = '__favn_schema';

/**
 * Loads a built feature from its `dist-server/` folder: the runtime manifest and the server
 * bundle it names. A bundle whose bytes do not match `serverFunctionsSha256` stays unloaded.
 *
 * @example
 * const feature = await loadBuiltFeature('my-feature/dist-server')
 */
export async function loadBuiltFeature(
  dir: string,
  options: { secrets?: Record<string, string>; warn?: (m: string) => void; log?: (line: string, level: string) => void; database?: SqlClient | (() => Promise<SqlClient>) } = {},
): Promise<HostedFeature> {
  const manifestFile = path.join(dir, 'feature.json');
  const manifest = readManifest(manifestFile, { runtime: true, warn: options.warn });
  const sf = manifest.serverFunctions;
  if (sf?.endpoint) {
    const endpoint = new EndpointExecutor({ endpoint: sf.endpoint, exports: sf.exports, forwardAuthHeaders: manifest.forwardAuthHeaders, timeoutMs: manifest.timeoutMs });
    const feature = hostedFeature(manifest, endpoint, options.secrets);
    feature.close = () => endpoint.close();
    return feature;
  }
  if (!sf?.module) return hostedFeature(manifest, null, options.secrets);

  const moduleFile = path.resolve(dir, sf.module);
  const bytes = await readFile(moduleFile);
  let schema: SchemaDefinition | null = null;
  let data: FeatureData | null = null;
  const load = async () => {
    const ns = (await import(pathToFileURL(moduleFile).href)) as Record<string, unknown>;
    schema = (ns[SCHEMA_EXPORT] as SchemaDefinition | undefined) ?? null;
    return ns;
  };
  const secrets = Object.freeze({ ...options.secrets });
  const isolates = new IsolateRunner({ featureId: manifest.id, limits: manifest.isolate, data: () => data, secrets: () => secrets, log: options.log });
  const executor = new ModuleExecutor(() => [{ file: sf.module as string, exportNames: sf.exports, load }], {
    adapt: combineAdapters(declarativeAdapter(manifest.id, () => data), handlerAdapter(isolates)),
  });
  const feature = hostedFeature(manifest, executor, secrets);
  feature.close = () => isolates.close();
  feature.isolates = () => isolates.stats();
  const digest = createHash('sha256').update(bytes).digest('hex');
  if (sf.serverFunctionsSha256 && sf.serverFunctionsSha256 !== digest) {
    feature.unavailableReason = `${sf.module} does not match serverFunctionsSha256 of ${manifestFile} (expected ${sf.serverFunctionsSha256}, got ${digest})`;
    return feature;
  }
  if (sf.handlers) {
    const code = await readFile(path.resolve(dir, sf.handlers.bundle), 'utf8').catch((error: Error) => error);
    const handlersDigest = typeof code === 'string' ? createHash('sha256').update(code).digest('hex') : null;
    if (typeof code !== 'string' || handlersDigest !== sf.handlers.sha256) {
      feature.unavailableReason =
        typeof code !== 'string'
          ? `the handler bundle ${sf.handlers.bundle} cannot be read: ${code.message}`
          : `${sf.handlers.bundle} does not match serverFunctions.handlers.sha256 of ${manifestFile} (expected ${sf.handlers.sha256}, got ${handlersDigest})`;
      return feature;
    }
    isolates.load(code, sf.handlers.kinds);
  }
  await executor.reload();
  if (schema) {
    if (!options.database) {
      feature.unavailableReason = `${sf.module} defines tables (server/schema.ts) but the host was given no database`;
      return feature;
    }
    // Production migrations never lose data: a destructive change keeps the feature unloaded.
    const model = modelSchema(manifest.id, schema);
    const database = typeof options.database === 'function' ? await options.database() : options.database;
    await migrate(database, model);
    data = new FeatureData(database, model, { transactionTimeoutMs: manifest.db?.transactionTimeoutMs });
    feature.data = data;
  }
  return feature;
}
