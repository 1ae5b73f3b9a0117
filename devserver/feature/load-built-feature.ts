import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { HandlerKind } from '../../runtime/kinds.js';
import type { SqlClient } from '../data/sql-client.js';
import { FeatureRuntime } from './feature-runtime.js';
import type { HostedFeature } from './hosted-feature.js';
import { readManifest } from './manifest.js';
import { SCHEMA_EXPORT } from './schema-loader.js';

export interface LoadBuiltFeatureOptions {
  /** `ctx.secrets`, or how to find them by the feature's id (read from its manifest). */
  secrets?: Record<string, string> | ((featureId: string) => Record<string, string>);
  warn?: (message: string) => void;
  log?: (line: string, level: string) => void;
  /** The database for a feature with tables; a function opens it only when one needs it. */
  database?: SqlClient | (() => Promise<SqlClient>);
  /**
   * Check the files now, load (import, migrate) on the first request that needs the feature:
   * `favn serve` over many features starts at once. A failed load then answers 503, not here.
   */
  lazy?: boolean;
}

/**
 * Loads a built feature from its `dist-server/` folder: the runtime manifest and the server
 * bundle it names. A bundle whose bytes do not match `serverFunctionsSha256` (or a handler bundle
 * that does not match its `sha256`) stays unloaded: every call answers 503 with the reason.
 *
 * @example
 * const feature = await loadBuiltFeature('my-feature/dist-server', { database })
 */
export async function loadBuiltFeature(dir: string, options: LoadBuiltFeatureOptions = {}): Promise<HostedFeature> {
  const manifestFile = path.join(dir, 'feature.json');
  const manifest = readManifest(manifestFile, { runtime: true, warn: options.warn });
  const sf = manifest.serverFunctions;
  const given = options.secrets;
  const secrets = Object.freeze({ ...(typeof given === 'function' ? given(manifest.id) : given) });
  let namespace: Promise<Record<string, unknown>> | null = null;
  let handlers: { code: string; kinds: Readonly<Record<string, HandlerKind>> } | null = null;
  const moduleFile = sf?.module ? path.resolve(dir, sf.module) : null;
  /** The digest the start checked: a lazy load imports only those bytes (a file changed since is refused). */
  let checked: string | null = null;
  const bundle = () => (namespace ??= importBundle());
  const importBundle = async (): Promise<Record<string, unknown>> => {
    const file = moduleFile as string;
    if (checked !== null) {
      const now = sha256(await readFile(file));
      if (now !== checked) {
        const reason = `${sf?.module} changed after the start (sha256 ${now}, checked ${checked}): restart to serve the new build`;
        runtime.markUnavailable(reason);
        throw new Error(reason);
      }
    }
    return import(pathToFileURL(file).href) as Promise<Record<string, unknown>>;
  };
  const runtime = new FeatureRuntime(
    manifest,
    {
      modules: () => (sf?.module ? [{ file: sf.module, exportNames: sf.exports, load: bundle }] : []),
      schema: async () => {
        if (!sf?.module) return null;
        const schema = (await bundle())[SCHEMA_EXPORT];
        return schema === undefined ? null : { namespace: schema, file: sf.module };
      },
      handlers: async () => handlers,
    },
    // Production: a module's load error goes to the log, not to callers.
    {
      secrets: () => secrets,
      log: options.log,
      warn: options.warn,
      database: options.database,
      detailedErrors: false,
      lazyIsolates: true,
      lazy: options.lazy,
    },
  );
  if (!sf?.module || !moduleFile) return runtime.feature;

  const digest = sha256(await readFile(moduleFile));
  if (sf.serverFunctionsSha256 && sf.serverFunctionsSha256 !== digest) {
    runtime.markUnavailable(
      `${sf.module} does not match serverFunctionsSha256 of ${manifestFile} (expected ${sf.serverFunctionsSha256}, got ${digest})`,
    );
    return runtime.feature;
  }
  if (sf.handlers) {
    const code = await readFile(path.resolve(dir, sf.handlers.bundle), 'utf8').catch((error: Error) => error);
    if (typeof code !== 'string') {
      runtime.markUnavailable(`the handler bundle ${sf.handlers.bundle} cannot be read: ${code.message}`);
      return runtime.feature;
    }
    const handlersDigest = sha256(code);
    if (handlersDigest !== sf.handlers.sha256) {
      runtime.markUnavailable(
        `${sf.handlers.bundle} does not match serverFunctions.handlers.sha256 of ${manifestFile} (expected ${sf.handlers.sha256}, got ${handlersDigest})`,
      );
      return runtime.feature;
    }
    handlers = { code, kinds: sf.handlers.kinds };
  }
  if (options.lazy) checked = digest;
  // Production migrations never lose data: a destructive change fails the load.
  else await runtime.load();
  return runtime.feature;
}

function sha256(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}
