import type { HandlerKind } from '../../runtime/kinds.js';
import type { SqlClient } from '../data/sql-client.js';
import { FeatureData } from '../data/feature-data.js';
import { migrate } from '../data/migrate.js';
import { modelSchema } from '../data/table-model.js';
import { DeclarativeExecutor } from '../executors/declarative-executor.js';
import { EndpointExecutor } from '../executors/endpoint-executor.js';
import type { Executor } from '../executors/executor.js';
import { IsolateExecutor } from '../executors/isolate-executor.js';
import { ModuleExecutor } from '../executors/module-executor.js';
import { IsolateRunner } from '../isolate/isolate-runner.js';
import { withTimeout } from '../common/with-timeout.js';
import { RequestError } from '../../runtime/request-error.js';
import { FunctionTable, MODULE_LOAD_TIMEOUT_MS, type ModuleEntry } from './function-table.js';
import { hostedFeature, type HostedFeature } from './hosted-feature.js';
import type { FeatureManifest } from './manifest.js';
import { schemaOf } from './schema-loader.js';

/** Where a feature's code comes from: Vite's module runner in dev, `dist-server/` when built. */
export interface FeatureSources {
  /** The feature's server modules, each with its scanned export names. Loaded last. */
  modules(): ModuleEntry[] | Promise<ModuleEntry[]>;
  /** The loaded schema module and its name for messages; `null` when the feature has no schema. */
  schema?(): Promise<{ namespace: unknown; file: string; absolute?: string } | null>;
  /** The handlers bundled for the isolates; `null` when there are none. Throws when it cannot be built. */
  handlers?(): Promise<{ code: string; kinds: Readonly<Record<string, HandlerKind>> } | null>;
}

export interface FeatureRuntimeOptions {
  /** The feature's secrets, read on every `configure` (dev re-reads `.env.local`). */
  secrets?: () => Readonly<Record<string, string>>;
  /** Receives isolate log lines (`console.*` of handlers). */
  log?: (line: string, level: string) => void;
  /** The database, opened on first need; absent: a feature with a schema stays unavailable. */
  database?: SqlClient | (() => Promise<SqlClient>);
  /** Let a migration drop tables or columns (dev, with the user's consent). */
  allowDestructive?: boolean;
  /** Told the statements of each migration that changed something. */
  onMigrated?: (applied: string[], schema: string, location: string) => void;
  /** Dev: a schema that fails keeps the previous one serving. Built (default): it fails the load. */
  keepLastGoodSchema?: boolean;
  /**
   * Why a module failed goes into the 503 of its functions (default, dev). `false` (production):
   * the answer says only that it failed, and `warn` gets why, so callers learn nothing of the code.
   */
  detailedErrors?: boolean;
  /** Told of problems an operator must see (a module that failed to load, in production). */
  warn?: (message: string) => void;
  /**
   * Make the first isolate at the first handler call, not at load (built features: their bundle
   * was checked when built; a host of many features then holds isolates only for those called).
   */
  lazyIsolates?: boolean;
  /**
   * Load nothing until a request needs the feature (`favn serve`: a host of many features starts
   * at once). `feature.ready()` starts the load; a failed load answers 503 (the reason goes to
   * `warn`) and is tried again by a request at least `LAZY_RETRY_MS` later.
   */
  lazy?: boolean;
}

/** How long a lazy feature whose load failed answers 503 before a request loads it again. */
export const LAZY_RETRY_MS = 10_000;

/** What went wrong in the latest load; the last good code keeps serving. */
export interface LoadProblems {
  schema: Error | null;
  handlers: Error | null;
  /** Server modules that failed to load (by file), or whose exports their executor refused. */
  modules: Map<string, Error>;
}

/**
 * The one assembly of a feature, for `vite` dev, `favn serve` and `loadBuiltFeature` alike: its
 * function table and the four executors side by side (plain functions in-process, declarative
 * CRUD, isolate handlers, or its own backend in endpoint mode), its data (schema, migration,
 * `FeatureData`) and its isolates. A load runs schema, handlers, then modules; calls made
 * meanwhile wait for it and calls in flight finish on the code they started with.
 *
 * @example
 * const runtime = new FeatureRuntime(manifest, { modules: () => entries, schema: loadSchema }, { database })
 * await runtime.load()
 * createHost([runtime.feature])
 */
export class FeatureRuntime {
  readonly problems: LoadProblems = { schema: null, handlers: null, modules: new Map() };
  #manifest: FeatureManifest;
  #sources: FeatureSources;
  #options: FeatureRuntimeOptions;
  #isolates: IsolateRunner;
  #modules: FunctionTable;
  #endpoint: { key: string; table: FunctionTable } | null = null;
  #data: FeatureData | null = null;
  /** The schema definition the database was last migrated to. */
  #migrated: unknown = null;
  #client: Promise<SqlClient> | null = null;
  #feature!: HostedFeature;
  #unavailable: string | undefined;
  /** Lazy: the first load, while it runs; `null` before it and once it succeeded. */
  #firstLoad: Promise<void> | null = null;
  #loadedOnce = false;
  /** Lazy: the failed first load's answer and when it failed. */
  #failure: { error: RequestError; reason: string; at: number } | null = null;

  constructor(manifest: FeatureManifest, sources: FeatureSources, options: FeatureRuntimeOptions = {}) {
    this.#manifest = manifest;
    this.#sources = sources;
    this.#options = options;
    this.#isolates = new IsolateRunner({
      featureId: manifest.id,
      limits: manifest.isolate,
      data: () => this.#data,
      secrets: () => this.#feature.secrets,
      log: options.log,
    });
    const executors: Executor[] = [
      new DeclarativeExecutor(manifest.id, () => this.#data),
      new IsolateExecutor(this.#isolates, { detailedErrors: options.detailedErrors }),
      new ModuleExecutor(),
    ];
    this.#modules = new FunctionTable('module', () => this.#entries(), executors, {
      onError: (file, error) => {
        this.problems.modules.set(file, error);
        if (options.detailedErrors === false)
          options.warn?.(`${manifest.id}: ${file} failed to load: ${error.message}`);
      },
      detailedErrors: options.detailedErrors,
    });
    this.configure(manifest);
  }

  /** The feature as the host serves it; a new object after each `configure`. */
  get feature(): HostedFeature {
    return this.#feature;
  }

  /** The data layer, once the schema has loaded and migrated. */
  get data(): FeatureData | null {
    return this.#data;
  }

  /** The manifest in use. */
  get manifest(): FeatureManifest {
    return this.#manifest;
  }

  /**
   * Applies a (re-read) manifest: declared names, timeouts, isolate limits, endpoint or modules.
   * The host must be given the new `feature`.
   */
  configure(manifest: FeatureManifest): HostedFeature {
    this.#manifest = manifest;
    this.#isolates.configure(manifest.isolate);
    const feature = hostedFeature(manifest, this.#table(manifest), this.#options.secrets?.() ?? {});
    Object.defineProperty(feature, 'data', { get: () => this.#data, enumerable: true });
    if (this.#unavailable) feature.unavailableReason = this.#unavailable;
    if (!manifest.serverFunctions?.endpoint) {
      feature.isolates = () => this.#isolates.stats();
      feature.handlersError = () => {
        const problem = this.problems.handlers;
        if (!problem) return null;
        // Production says that they do not run, the log says why (as for a module that fails).
        return this.#options.detailedErrors === false
          ? 'the handler bundle did not load (the host logged why)'
          : problem.message;
      };
    }
    feature.close = () => void this.close();
    if (this.#options.lazy) {
      feature.ready = () => this.#ready();
      feature.loadError = () => this.#failure?.reason ?? null;
    }
    this.#feature = feature;
    return feature;
  }

  /**
   * The database's tables changed outside the host (DDL through the dev database): the next load
   * migrates again even if the schema module did not change.
   */
  schemaChanged(): void {
    this.#migrated = null;
  }

  /** Makes every call answer 503 with `reason` (a failed integrity check, no database). */
  markUnavailable(reason: string): void {
    this.#unavailable = reason;
    this.#feature.unavailableReason = reason;
  }

  /** Loads schema, handlers and modules; resolves once calls run the new code. */
  load(): Promise<void> {
    return this.#modules.reload();
  }

  /** Lazy: `null` once loaded, else the first load (started by this call when none runs). */
  #ready(): Promise<void> | null {
    if (this.#loadedOnce) return null;
    // A feature that failed its integrity check never runs its code, whichever route asks.
    if (this.#unavailable) return Promise.reject(RequestError.of('unavailable', this.#unavailable));
    if (this.#firstLoad) return this.#firstLoad;
    const failure = this.#failure;
    if (failure && performance.now() - failure.at < LAZY_RETRY_MS) return Promise.reject(failure.error);
    const loading = this.load().then(
      () => {
        this.#loadedOnce = true;
        this.#failure = null;
        this.#firstLoad = null;
      },
      (error: unknown) => {
        const message = error instanceof Error ? error.message : String(error);
        this.#options.warn?.(`${this.#manifest.id}: did not load: ${message}`);
        const reason =
          this.#options.detailedErrors === false ? 'the feature did not load (the host logged why)' : message;
        this.#failure = { error: RequestError.of('unavailable', reason), reason, at: performance.now() };
        this.#firstLoad = null;
        throw this.#failure.error;
      },
    );
    this.#firstLoad = loading;
    return loading;
  }

  /** Frees the isolates, the endpoint's sockets and the database this runtime opened. */
  async close(): Promise<void> {
    this.#modules.close();
    this.#endpoint?.table.close();
    const client = this.#client;
    this.#client = null;
    // A database handed in by the caller is the caller's to close.
    if (client && typeof this.#options.database === 'function') await (await client.catch(() => null))?.close();
  }

  #table(manifest: FeatureManifest): FunctionTable {
    const sf = manifest.serverFunctions;
    if (!sf?.endpoint) {
      // Back from endpoint mode: its keep-alive sockets go.
      this.#endpoint?.table.close();
      this.#endpoint = null;
      return this.#modules;
    }
    // Endpoint proxy mode: the declared names are the functions, all run on the feature's backend.
    const key = JSON.stringify([sf.endpoint, manifest.forwardAuthHeaders ?? true, manifest.timeoutMs, sf.exports]);
    if (this.#endpoint?.key !== key) {
      this.#endpoint?.table.close();
      const endpoint = new EndpointExecutor({
        endpoint: sf.endpoint,
        forwardAuthHeaders: manifest.forwardAuthHeaders,
        timeoutMs: manifest.timeoutMs,
      });
      const names = Object.fromEntries(sf.exports.map((name) => [name, undefined]));
      const table = new FunctionTable(
        'endpoint',
        () => [{ file: sf.endpoint as string, exportNames: sf.exports, load: () => names }],
        [endpoint],
      );
      void table.reload();
      this.#endpoint = { key, table };
    }
    return this.#endpoint.table;
  }

  async #entries(): Promise<ModuleEntry[]> {
    this.problems.modules.clear();
    // The handlers are scanned and bundled while the schema module loads and the database opens
    // (file reads and the bundler's own threads beside them): not one after the other.
    const handlers = this.#loadHandlers();
    await this.#loadSchema();
    await handlers;
    return this.#sources.modules();
  }

  /** Loads the schema and migrates the database to it; a refused change keeps the previous one (dev). */
  async #loadSchema(): Promise<void> {
    try {
      const ms = MODULE_LOAD_TIMEOUT_MS;
      const late = () => new Error(`the schema module did not finish loading within ${ms} ms`);
      const loaded = await withTimeout(this.#sources.schema?.(), ms, late);
      if (!loaded) return;
      const definition = schemaOf(loaded.namespace, loaded.file, loaded.absolute);
      const transactionTimeoutMs = this.#manifest.db?.transactionTimeoutMs;
      if (this.#data && definition === this.#migrated && this.problems.schema === null) {
        // The same schema module as the last migration (not evaluated again since): nothing to do.
        this.#data.transactionTimeoutMs = transactionTimeoutMs;
        return;
      }
      const model = modelSchema(this.#manifest.id, definition, loaded.file);
      if (!this.#options.database) {
        this.markUnavailable(`${loaded.file} defines tables (server/schema.ts) but the host was given no database`);
        return;
      }
      const client = await this.#database(this.#options.database);
      const { applied } = await migrate(client, model, { allowDestructive: this.#options.allowDestructive });
      if (applied.length) this.#options.onMigrated?.(applied, model.schema, client.location);
      this.#migrated = definition;
      if (this.#data) {
        this.#data.setModel(model);
        this.#data.transactionTimeoutMs = transactionTimeoutMs;
      } else this.#data = new FeatureData(client, model, { transactionTimeoutMs });
      this.problems.schema = null;
    } catch (error) {
      if (!this.#options.keepLastGoodSchema) throw error;
      this.problems.schema = error instanceof Error ? error : new Error(String(error));
    }
  }

  /** The database, opened once; a failed open (a folder in use) is tried again on the next load. */
  #database(database: SqlClient | (() => Promise<SqlClient>)): Promise<SqlClient> {
    this.#client ??= openClient(database).catch((error: unknown) => {
      this.#client = null;
      throw error;
    });
    return this.#client;
  }

  /** Loads the handler bundle into the isolates; a failed one keeps the previous one serving. */
  async #loadHandlers(): Promise<void> {
    try {
      const bundle = await this.#sources.handlers?.();
      if (bundle) this.#isolates.load(bundle.code, bundle.kinds, { warm: !this.#options.lazyIsolates });
      this.problems.handlers = null;
      this.#isolates.loadError = null;
    } catch (error) {
      this.problems.handlers = error instanceof Error ? error : new Error(String(error));
      this.#isolates.loadError = this.problems.handlers.message;
      if (this.#options.detailedErrors === false)
        this.#options.warn?.(
          `${this.#manifest.id}: the handler bundle did not load: ${this.problems.handlers.message}`,
        );
    }
  }
}

async function openClient(database: SqlClient | (() => Promise<SqlClient>)): Promise<SqlClient> {
  return typeof database === 'function' ? database() : database;
}
