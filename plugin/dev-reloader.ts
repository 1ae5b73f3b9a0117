import { existsSync, unwatchFile, watchFile, type Stats } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { createServerModuleRunner, type ViteDevServer } from 'vite';
import type { ModuleRunner } from 'vite/module-runner';
import { EndpointExecutor } from '../devserver/executors/endpoint-executor.js';
import { hostedFeature } from '../devserver/feature/hosted-feature.js';
import type { Host } from '../devserver/host/host.js';
import { readManifest } from '../devserver/feature/manifest.js';
import { ModuleExecutor, type ModuleEntry } from '../devserver/executors/module-executor.js';
import { UsageError } from '../devserver/common/usage-error.js';
import { readEnvLocal } from '../devserver/common/env-local.js';
import { migrate } from '../devserver/data/migrate.js';
import { openDatabase } from '../devserver/data/open-database.js';
import type { SqlClient } from '../devserver/data/sql-client.js';
import { declarativeAdapter } from '../devserver/executors/declarative-executor.js';
import { bundleHandlers, type HandlerModule } from '../devserver/isolate/bundle-handlers.js';
import { combineAdapters, handlerAdapter, nodeSnapshotWarning } from '../devserver/executors/isolate-executor.js';
import { IsolateRunner } from '../devserver/isolate/isolate-runner.js';
import { FeatureData } from '../devserver/data/feature-data.js';
import { modelSchema } from '../devserver/data/table-model.js';
import type { SchemaDefinition } from '../runtime/schema.js';
import { compareExports, describeReport } from '../devserver/scan/check-exports.js';
import type { PluginState } from './options.js';
import { reportProblems, type Problem } from './report-problems.js';
import { scanProject, type ProjectScan } from '../devserver/scan/server-modules.js';

/**
 * The feature as the dev server runs it: server modules loaded through Vite's module runner,
 * re-scanned and reloaded on every relevant save, problems shown in terminal and overlay.
 */
export class DevFeature {
  readonly executor: ModuleExecutor;
  #server: ViteDevServer;
  #state: PluginState;
  #host: Host;
  #runner: ModuleRunner;
  #scan: ProjectScan = { modules: [], errors: [] };
  #loadErrors = new Map<string, Error>();
  #manifestError: UsageError | null = null;
  #timer: NodeJS.Timeout | null = null;
  #changed = new Set<string>();
  #schemaFile: string;
  #client: SqlClient | null = null;
  #data: FeatureData | null = null;
  #schemaError: Error | null = null;
  #isolates: IsolateRunner;
  #bundleError: Error | null = null;
  #snapshotWarned = false;
  #endpoint: { key: string; executor: EndpointExecutor } | null = null;

  constructor(server: ViteDevServer, state: PluginState, host: Host) {
    this.#server = server;
    this.#state = state;
    this.#host = host;
    // A runner of our own, without HMR: we decide when server code reloads.
    this.#runner = createServerModuleRunner(server.environments.ssr, { hmr: false });
    this.#schemaFile = path.resolve(state.root, state.options.schema ?? 'server/schema.ts');
    const logger = server.config.logger;
    this.#isolates = new IsolateRunner({
      featureId: state.manifest.id,
      limits: state.manifest.isolate,
      data: () => this.#data,
      // The feature's secrets as of the last reload, like plain functions see them.
      secrets: () => this.#host.features.get(this.#state.manifest.id)?.secrets ?? {},
      log: (line, level) => (level === 'error' || level === 'warn' ? logger.warn : logger.info)(`[favn] ${line}`, { timestamp: true }),
    });
    this.executor = new ModuleExecutor(() => this.#entries(), {
      onError: (file, error) => this.#loadErrors.set(file, error),
      adapt: combineAdapters(declarativeAdapter(state.manifest.id, () => this.#data), handlerAdapter(this.#isolates)),
    });
    host.features.set(state.manifest.id, this.#feature());
    // Editors and tools may write the manifest twice in quick succession; the file watcher can
    // fold such writes into one event. A stat poll of this one small file never misses one.
    watchFile(state.manifestFile, { interval: 150 }, this.#onManifestStat);
  }

  #onManifestStat = (current: Stats, previous: Stats): void => {
    if (current.mtimeMs !== previous.mtimeMs || current.size !== previous.size) this.scheduleReload();
  };

  /** True when a change to `file` needs server code to reload. */
  affects(file: string): boolean {
    if (file === this.#schemaFile || this.#scan.modules.some((m) => m.absolute === file)) return true;
    return (this.#runner.evaluatedModules.getModulesByFile(file)?.size ?? 0) > 0;
  }

  /**
   * Re-scans and reloads soon; saves in quick succession coalesce into one reload. Only `file`
   * (if given) and the modules that import it are evaluated again; others keep their state.
   */
  scheduleReload(file?: string): void {
    if (file) this.#changed.add(file);
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = null;
      void this.reload();
    }, 20);
  }

  /**
   * Re-reads the manifest, re-scans and reloads every server module, checks exports and reports
   * problems. A bad manifest is reported and the last good one keeps serving.
   */
  async reload(): Promise<void> {
    await settleWrites(this.#changed);
    this.#readManifest();
    // Schema and modules load inside the executor's reload, so calls made meanwhile wait for it.
    await this.executor.reload();
    this.#report();
  }

  /** The data layer, once `server/schema.ts` has loaded and migrated (for tools and tests). */
  get data(): FeatureData | null {
    return this.#data;
  }

  /**
   * Loads `server/schema.ts` and migrates the database to it. A schema that fails to load or a
   * refused (destructive) change is reported and the previous schema keeps serving.
   */
  async #loadSchema(): Promise<void> {
    if (!existsSync(this.#schemaFile)) return;
    try {
      this.#invalidateChanged();
      const ns = (await this.#runner.import(this.#schemaFile)) as { default?: SchemaDefinition; schema?: SchemaDefinition };
      const definition = ns.default ?? ns.schema;
      const file = path.relative(this.#state.root, this.#schemaFile);
      if (!definition || typeof definition !== 'object' || !('tables' in definition)) {
        throw new UsageError(`${file} must "export default defineSchema({...})"`, { file: this.#schemaFile });
      }
      const model = modelSchema(this.#state.manifest.id, definition, file);
      this.#client ??= await openDatabase(this.#state.root, { ...readEnvLocal(this.#state.root), ...process.env });
      const { applied } = await migrate(this.#client, model, { allowDestructive: process.env.FAVN_ALLOW_DESTRUCTIVE_MIGRATIONS === '1' });
      if (applied.length) this.#server.config.logger.info(`[favn] migrated ${model.schema} (${this.#client.location}):\n  ${applied.join(';\n  ')}`, { timestamp: true });
      const transactionTimeoutMs = this.#state.manifest.db?.transactionTimeoutMs;
      if (this.#data) {
        this.#data.setModel(model);
        this.#data.transactionTimeoutMs = transactionTimeoutMs;
      } else this.#data = new FeatureData(this.#client, model, { transactionTimeoutMs });
      this.#schemaError = null;
    } catch (error) {
      this.#schemaError = error instanceof Error ? error : new Error(String(error));
    }
  }

  #readManifest(): void {
    const oldId = this.#state.manifest.id;
    try {
      this.#state.manifest = readManifest(this.#state.manifestFile, { warn: (m) => this.#server.config.logger.warn(m) });
      this.#manifestError = null;
    } catch (error) {
      this.#manifestError = error instanceof UsageError ? error : new UsageError(String(error), { file: this.#state.manifestFile });
      return;
    }
    if (this.#state.manifest.id !== oldId) {
      this.#host.features.delete(oldId);
      // Proxies embed the featureId: regenerate them and reload the page.
      this.#server.environments.client.moduleGraph.invalidateAll();
      this.#server.ws.send({ type: 'full-reload' });
    }
  }

  async close(): Promise<void> {
    if (this.#timer) clearTimeout(this.#timer);
    unwatchFile(this.#state.manifestFile, this.#onManifestStat);
    this.#isolates.close();
    this.#endpoint?.executor.close();
    await this.#runner.close();
    await this.#client?.close();
  }

  #feature() {
    const { manifest, root } = this.#state;
    const sf = manifest.serverFunctions;
    if (!sf?.endpoint) {
      const feature = hostedFeature(manifest, this.executor, readEnvLocal(root), this.#data);
      feature.isolates = () => this.#isolates.stats();
      return feature;
    }
    // Endpoint proxy mode in dev too: calls go to the feature's own backend.
    const key = `${sf.endpoint} ${manifest.forwardAuthHeaders ?? true} ${manifest.timeoutMs} ${sf.exports.join()}`;
    if (this.#endpoint?.key !== key) {
      this.#endpoint?.executor.close();
      this.#endpoint = { key, executor: new EndpointExecutor({ endpoint: sf.endpoint, exports: sf.exports, forwardAuthHeaders: manifest.forwardAuthHeaders, timeoutMs: manifest.timeoutMs }) };
    }
    return hostedFeature(manifest, this.#endpoint.executor, readEnvLocal(root), this.#data);
  }

  async #entries(): Promise<ModuleEntry[]> {
    await this.#loadSchema();
    this.#host.features.set(this.#state.manifest.id, this.#feature());
    const previous = this.#scan;
    this.#scan = await scanProject(this.#state.root, { classify: true, ignore: this.#state.options.ignore });
    await this.#bundleHandlers();
    // A module that does not parse keeps its last known exports for the manifest check.
    for (const mod of this.#scan.modules) {
      if (!mod.parsed) mod.exports = previous.modules.find((m) => m.absolute === mod.absolute)?.exports ?? [];
    }
    // Modules that failed last time are retried from scratch.
    for (const file of this.#loadErrors.keys()) this.#changed.add(path.resolve(this.#state.root, file));
    this.#loadErrors.clear();
    this.#invalidateChanged();
    return this.#scan.modules.map((m) => ({
      file: m.file,
      exportNames: m.parsed ? m.exports.map((e) => e.name) : null,
      load: () => this.#runner.import(m.absolute),
    }));
  }

  /**
   * Bundles the handlers (`query`/`mutation`/`action`) for the isolates; the next call runs the
   * new bundle, calls in flight finish on the old one. A failed bundle is reported and the last
   * good one keeps serving.
   */
  async #bundleHandlers(): Promise<void> {
    this.#isolates.configure(this.#state.manifest.isolate);
    const modules: HandlerModule[] = this.#scan.modules
      .map((m) => ({ absolute: m.absolute, handlers: m.exports.flatMap((e) => (e.handler ? [{ name: e.name, kind: e.handler }] : [])) }))
      .filter((m) => m.handlers.length > 0);
    if (modules.length === 0) return;
    if (!this.#snapshotWarned) {
      this.#snapshotWarned = true;
      const warning = nodeSnapshotWarning();
      if (warning) this.#server.config.logger.warn(`[favn] ${warning}`);
    }
    try {
      const bundle = await bundleHandlers(this.#state.root, modules, { alias: this.#server.config.resolve.alias });
      this.#isolates.load(bundle.code, bundle.kinds);
      this.#bundleError = null;
    } catch (error) {
      this.#bundleError = error instanceof Error ? error : new Error(String(error));
      this.#isolates.loadError = this.#bundleError.message;
    }
  }

  /** Drops changed files and everything that imports them from the runner's cache. */
  #invalidateChanged(): void {
    const modules = this.#runner.evaluatedModules;
    const seen = new Set<string>();
    const invalidate = (id: string) => {
      if (seen.has(id)) return;
      seen.add(id);
      const node = modules.getModuleById(id);
      if (!node) return;
      modules.invalidateModule(node);
      for (const importer of node.importers) invalidate(importer);
    };
    for (const file of this.#changed) for (const node of modules.getModulesByFile(file) ?? []) invalidate(node.id);
    this.#changed.clear();
  }

  #report(): void {
    const { manifest, manifestFile, root } = this.#state;
    const problems: Problem[] = [];
    if (this.#manifestError) problems.push({ message: this.#manifestError.message, file: manifestFile });
    if (this.#bundleError) problems.push({ message: `The handler bundle (query/mutation/action) could not be built; the last good one keeps serving.\n${this.#bundleError.message}`, file: (this.#bundleError as UsageError).file });
    if (this.#schemaError) problems.push({ message: `${path.relative(root, this.#schemaFile)}: ${this.#schemaError.message}`, file: this.#schemaFile });
    for (const error of this.#scan.errors) problems.push({ message: error.message, file: error.file && path.resolve(root, error.file), line: error.line, column: error.column });
    for (const [file, error] of this.#loadErrors) {
      if (this.#scan.errors.some((e) => e.file === file)) continue;
      problems.push({ message: `${file} failed to load; the last good version keeps serving.\n${error.message}`, file: path.resolve(root, file) });
    }
    if (manifest.serverFunctions?.module || !manifest.serverFunctions) {
      const report = compareExports(this.#scan.modules, manifest.serverFunctions?.exports ?? []);
      const lines = describeReport(report, path.relative(root, manifestFile));
      if (lines.length) problems.push({ message: `Server function exports do not match the manifest:\n${lines.join('\n')}`, file: manifestFile, warning: true });
    }
    reportProblems(this.#server, problems);
  }
}

/**
 * A save can be seen between the truncate and the write: the file is briefly empty. Reading it
 * then would make every export vanish until the next event, so wait (briefly) for the content.
 */
async function settleWrites(files: Iterable<string>): Promise<void> {
  for (const file of files) {
    for (let i = 0; i < 10; i++) {
      const info = await stat(file).catch(() => null);
      if (!info || info.size > 0) break;
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}
