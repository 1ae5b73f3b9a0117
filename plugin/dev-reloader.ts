import { existsSync, unwatchFile, watchFile, type Stats } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { createServerModuleRunner, type ViteDevServer } from 'vite';
import type { EvaluatedModuleNode, ModuleRunner } from 'vite/module-runner';
import type { HandlerKind } from '../runtime/kinds.js';
import { readEnvLocal } from '../devserver/common/env-local.js';
import { waitForContent } from '../devserver/common/settled-file.js';
import { UsageError } from '../devserver/common/usage-error.js';
import { openDatabase } from '../devserver/data/open-database.js';
import type { FeatureData } from '../devserver/data/feature-data.js';
import { nodeSnapshotWarning } from '../devserver/executors/isolate-executor.js';
import { FeatureRuntime } from '../devserver/feature/feature-runtime.js';
import type { ModuleEntry } from '../devserver/feature/function-table.js';
import { readManifest } from '../devserver/feature/manifest.js';
import { DEFAULT_SCHEMA_FILE } from '../devserver/feature/schema-loader.js';
import type { Host } from '../devserver/host/host.js';
import {
  bundleHandlers,
  isResolutionConfig,
  type HandlerBundle,
  type HandlerModule,
} from '../devserver/isolate/bundle-handlers.js';
import { compareExports, describeReport } from '../devserver/scan/check-exports.js';
import { scanProject, type ProjectScan, type ScanCache } from '../devserver/scan/server-modules.js';
import { SERVER_ENVIRONMENT, type PluginState } from './options.js';
import { reportProblems, type Problem } from './report-problems.js';

/** What an import of server code can resolve to (the handler bundler's extensions). */
const IMPORTABLE = /\.(?:ts|tsx|mts|cts|js|jsx|mjs|cjs|json)$/;
/** Folders of installed packages and build output, never imported from by path. */
const IGNORED_FOLDERS = new Set(['node_modules', 'dist', 'dist-server']);
/** Vite's file watcher reports at most one change of a file per this many ms. */
const WATCHER_THROTTLE_MS = 50;

/**
 * `vite` dev's side of a feature: its code comes through Vite's module runner, and a save of a
 * server module, the schema or `feature.json` re-scans and asks the feature runtime to load again;
 * problems go to the terminal and the overlay. The feature itself is assembled by `FeatureRuntime`,
 * as for `favn serve`.
 */
export class DevReloader {
  readonly runtime: FeatureRuntime;
  #server: ViteDevServer;
  #state: PluginState;
  #host: Host;
  #runner: ModuleRunner;
  #scan: ProjectScan = { modules: [], errors: [] };
  #manifestError: UsageError | null = null;
  #timer: NodeJS.Immediate | null = null;
  #changed = new Set<string>();
  #schemaFile: string;
  #snapshotWarned = false;
  /** Size and time of each changed file as the last reload read it. */
  #read = new Map<string, { mtimeMs: number; size: number }>();
  #rechecks = new Map<string, NodeJS.Timeout>();
  #closed = false;
  /**
   * The server modules the last scan found, while no file was created or deleted since: a save
   * of a known file does not walk the project again (10 ms in a repo of 4,000 files).
   */
  #known: string[] | null = null;
  /** Counts what makes `#known` stale, so a scan under way does not keep a list made before. */
  #listChanges = 0;
  /** What the scans parsed: a save parses the saved module only. */
  #scanCache: ScanCache = new Map();
  /**
   * The last handler bundle, while no file was created or deleted since (a new file can change
   * what an import resolves to): a save of a file outside it bundles nothing.
   */
  #bundle: { bundle: HandlerBundle; listChanges: number } | null = null;

  constructor(server: ViteDevServer, state: PluginState, host: Host) {
    this.#server = server;
    this.#state = state;
    this.#host = host;
    // A runner of our own, in our own environment, without HMR: we decide when server code
    // reloads, and a framework's SSR environment keeps its in-process stand-ins.
    this.#runner = createServerModuleRunner(server.environments[SERVER_ENVIRONMENT]!, { hmr: false });
    this.#schemaFile = path.resolve(state.root, state.options.schema ?? DEFAULT_SCHEMA_FILE);
    const logger = server.config.logger;
    this.runtime = new FeatureRuntime(
      state.manifest,
      { modules: () => this.#modules(), schema: () => this.#loadSchema(), handlers: () => this.#bundleHandlers() },
      {
        secrets: () => readEnvLocal(state.root),
        log: (line, level) =>
          (level === 'error' || level === 'warn' ? logger.warn : logger.info)(`[favn] ${line}`, { timestamp: true }),
        database: () => openDatabase(state.root, { ...readEnvLocal(state.root), ...process.env }),
        allowDestructive: process.env.FAVN_ALLOW_DESTRUCTIVE_MIGRATIONS === '1',
        onMigrated: (applied, schema, location) =>
          logger.info(`[favn] migrated ${schema} (${location}):\n  ${applied.join(';\n  ')}`, { timestamp: true }),
        keepLastGoodSchema: true,
      },
    );
    host.features.set(state.manifest.id, this.runtime.feature);
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
    // What the handler bundle was made of, configs it follows (a tsconfig's `extends`) included.
    if (this.#bundle?.bundle.sources?.files.some((f) => f.file === file)) return true;
    return (this.#runner.evaluatedModules.getModulesByFile(file)?.size ?? 0) > 0;
  }

  /**
   * Re-scans and reloads at the watcher event; saves made before the reload starts join it. Only `file`
   * (if given) and the modules that import it are evaluated again; others keep their state.
   */
  scheduleReload(file?: string, change: 'create' | 'update' | 'delete' = 'update'): void {
    if (this.#closed) return;
    // A new or deleted server module, or a reload for another reason: the next scan walks again.
    if (!file || change !== 'update') this.filesCreatedOrDeleted();
    if (file) {
      this.#changed.add(file);
      this.#recheck(file);
    }
    // At once: saves that arrive before the reload starts join it; later ones load again after it.
    if (this.#timer) return;
    this.#timer = setImmediate(() => {
      this.#timer = null;
      void this.reload();
    });
  }

  /** `#listChanges` at the last retry of failed modules. */
  #retriedAt = 0;

  /** A file was created or deleted: the next reload walks the project and bundles the handlers again. */
  filesCreatedOrDeleted(): void {
    this.#known = null;
    this.#listChanges++;
  }

  /**
   * A change to a file no server code has loaded. A file created or deleted, or a `package.json`,
   * `tsconfig.json` or `jsconfig.json` edited, may change what an import of handler code resolves
   * to (a `.ts` beside a `.js`, a missing import now there, `paths`): handlers are bundled again.
   */
  otherFileChanged(file: string, change: 'create' | 'update' | 'delete'): void {
    const config = isResolutionConfig(path.basename(file));
    if (change === 'update' && !config) return;
    // Only files an import can resolve to, outside build output: an editor's backup or swap file,
    // a `vite build` writing dist/ or test coverage changes nothing.
    if (!config && !IMPORTABLE.test(file)) return;
    const relative = path.relative(this.#state.root, file).split(path.sep);
    if (relative.some((part) => IGNORED_FOLDERS.has(part) || part.startsWith('.'))) return;
    this.filesCreatedOrDeleted();
    // With handlers bundled, or code that failed to load (an import that a new file may now satisfy).
    const { handlers, modules } = this.runtime.problems;
    if (this.#bundle || handlers || modules.size > 0) this.scheduleReload();
  }

  /**
   * Vite's file watcher drops a second change of a file within 50 ms of the first (a save, then a
   * formatter's rewrite): once that window has passed, a file that differs from what the reload
   * read is loaded again.
   */
  #recheck(file: string): void {
    clearTimeout(this.#rechecks.get(file));
    const timer = setTimeout(async () => {
      this.#rechecks.delete(file);
      // Not read yet (a reload is under way): look again after the one that reads it.
      if (this.#changed.has(file)) return this.#recheck(file);
      const now = await stat(file).catch(() => null);
      const read = this.#read.get(file);
      if (now && (!read || read.mtimeMs !== now.mtimeMs || read.size !== now.size)) this.scheduleReload(file);
    }, WATCHER_THROTTLE_MS + 20);
    timer.unref();
    this.#rechecks.set(file, timer);
  }

  /**
   * Re-reads the manifest, reloads schema, handlers and server modules, checks exports and
   * reports problems. A bad manifest is reported and the last good one keeps serving.
   */
  async reload(): Promise<void> {
    this.#readManifest();
    await this.#retryFailed();
    await this.runtime.load();
    this.#report();
    // Saved server code may answer differently: the feature's live queries run again.
    this.#host.live.changed({ featureId: this.#state.manifest.id, tables: null });
  }

  /**
   * Modules that failed in the last load, and the modules under them whose evaluation failed too,
   * load from scratch: Vite's runner and module graph would otherwise keep an import that failed
   * (of a file that did not exist then, at any depth) until the module that has it is saved.
   * After a file was created, every module whose evaluation failed does (one loaded by `import()`
   * too). Only those modules are dropped, not their importers: an importer either failed as well
   * or handled the failure. Modules that evaluated fine keep their state.
   */
  async #retryFailed(): Promise<void> {
    const modules = this.#runner.evaluatedModules;
    const graph = this.#server.environments[SERVER_ENVIRONMENT]!.moduleGraph;
    const problems = new Set(
      [...this.runtime.problems.modules.keys()].map((file) => path.resolve(this.#state.root, file)),
    );
    const seen = new Set<string>();
    const retry = new Set<EvaluatedModuleNode>();
    const walk = async (id: string): Promise<void> => {
      if (seen.has(id)) return;
      seen.add(id);
      const node = modules.getModuleById(id);
      if (!node?.file || !path.isAbsolute(node.file) || node.file.split(path.sep).includes('node_modules')) return;
      const state = await settled(node.promise);
      // Still running: a module that timed out (a top-level await that never settles) is retried;
      // one another load is evaluating right now is left to it.
      if (state === 'fulfilled' || state === 'unloaded' || (state === 'pending' && !problems.has(node.file))) return;
      retry.add(node);
      await Promise.all([...node.imports].map(walk));
    };
    const created = this.#retriedAt !== this.#listChanges;
    this.#retriedAt = this.#listChanges;
    await Promise.all([
      ...(created ? [...modules.idToModuleMap.keys()].map(walk) : []),
      ...[...problems].flatMap((file) => [...(modules.getModulesByFile(file) ?? [])].map((node) => walk(node.id))),
    ]);
    // A module whose transform failed has no node in the runner; its next fetch transforms anew.
    for (const file of problems) graph.onFileChange(file);
    for (const node of retry) {
      graph.onFileChange(node.file);
      modules.invalidateModule(node);
    }
  }

  /** The data layer, once `server/schema.ts` has loaded and migrated (for tools and tests). */
  get data(): FeatureData | null {
    return this.runtime.data;
  }

  async close(): Promise<void> {
    // A re-check whose stat is under way must not start a reload afterwards.
    this.#closed = true;
    if (this.#timer) clearImmediate(this.#timer);
    for (const timer of this.#rechecks.values()) clearTimeout(timer);
    unwatchFile(this.#state.manifestFile, this.#onManifestStat);
    await this.runtime.close();
    await this.#runner.close();
  }

  #readManifest(): void {
    const oldId = this.#state.manifest.id;
    try {
      this.#state.manifest = readManifest(this.#state.manifestFile, {
        warn: (m) => this.#server.config.logger.warn(m),
      });
      this.#manifestError = null;
    } catch (error) {
      this.#manifestError =
        error instanceof UsageError ? error : new UsageError(String(error), { file: this.#state.manifestFile });
      return;
    }
    // Secrets, limits, declared names and endpoint or modules follow the manifest (and .env.local).
    const feature = this.runtime.configure(this.#state.manifest);
    if (this.#state.manifest.id !== oldId) {
      this.#host.features.delete(oldId);
      // Proxies embed the featureId: regenerate them and reload the page.
      this.#server.environments.client.moduleGraph.invalidateAll();
      this.#server.ws.send({ type: 'full-reload' });
    }
    this.#host.features.set(this.#state.manifest.id, feature);
  }

  /** `server/schema.ts` through Vite's runner, when it exists (a deleted one keeps the last). */
  async #loadSchema(): Promise<{ namespace: unknown; file: string; absolute: string } | null> {
    if (!existsSync(this.#schemaFile)) return null;
    await this.#invalidateChanged();
    const namespace = await this.#runner.import(this.#schemaFile);
    return { namespace, file: path.relative(this.#state.root, this.#schemaFile), absolute: this.#schemaFile };
  }

  /**
   * Re-scans the project, then hands the runtime its server modules. Only changed modules (and
   * their importers) evaluate again.
   */
  async #modules(): Promise<ModuleEntry[]> {
    await this.#invalidateChanged();
    return this.#scan.modules.map((m) => ({
      file: m.file,
      exportNames: m.parsed ? m.exports.map((e) => e.name) : null,
      load: () => this.#runner.import(m.absolute),
    }));
  }

  /**
   * Scans the project and bundles its handlers (`query`/`mutation`/`action`) for the isolates; the
   * next call runs the new bundle, calls in flight finish on the old one.
   */
  async #bundleHandlers(): Promise<{ code: string; kinds: Record<string, HandlerKind> } | null> {
    const previous = this.#scan;
    const known = this.#known;
    const changes = this.#listChanges;
    this.#scan = await scanProject(this.#state.root, {
      classify: true,
      ignore: this.#state.options.ignore,
      settle: true,
      files: known ?? undefined,
      cache: this.#scanCache,
    });
    // Kept unless a creation or deletion was seen while this scan ran (the next reload walks).
    if (changes === this.#listChanges) this.#known = this.#scan.modules.map((m) => m.absolute);
    // A module that does not parse keeps its last known exports for the manifest check.
    for (const mod of this.#scan.modules) {
      if (!mod.parsed) mod.exports = previous.modules.find((m) => m.absolute === mod.absolute)?.exports ?? [];
    }
    const modules: HandlerModule[] = this.#scan.modules
      .map((m) => ({
        absolute: m.absolute,
        handlers: m.exports.flatMap((e) => (e.handler ? [{ name: e.name, kind: e.handler }] : [])),
      }))
      .filter((m) => m.handlers.length > 0);
    if (modules.length === 0) {
      this.#bundle = null;
      return null;
    }
    if (!this.#snapshotWarned) {
      this.#snapshotWarned = true;
      const warning = nodeSnapshotWarning();
      if (warning) this.#server.config.logger.warn(`[favn] ${warning}`);
    }
    const last = this.#bundle?.listChanges === changes ? this.#bundle.bundle : null;
    const bundle = await bundleHandlers(this.#state.root, modules, {
      alias: this.#server.config.resolve.alias,
      previous: last,
    });
    this.#bundle = { bundle, listChanges: changes };
    return bundle;
  }

  /**
   * Drops changed files and everything that imports them from the runner's cache, once each has
   * its content (a save seen between its truncate and its write would load an empty module).
   */
  async #invalidateChanged(): Promise<void> {
    const changed = [...this.#changed];
    this.#changed.clear();
    await Promise.all(
      changed.map(async (file) => {
        const info = await waitForContent(file);
        // What this reload reads, for the re-check after the watcher's quiet window.
        if (info) this.#read.set(file, { mtimeMs: info.mtimeMs, size: info.size });
        else this.#read.delete(file);
      }),
    );
    // Vite may have transformed a file between two quick saves, after it last invalidated it.
    const graph = this.#server.environments[SERVER_ENVIRONMENT]!.moduleGraph;
    for (const file of changed) graph.onFileChange(file);
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
    for (const file of changed) for (const node of modules.getModulesByFile(file) ?? []) invalidate(node.id);
  }

  #report(): void {
    const { manifest, manifestFile, root } = this.#state;
    const { schema, handlers, modules } = this.runtime.problems;
    const problems: Problem[] = [];
    if (this.#manifestError) problems.push({ message: this.#manifestError.message, file: manifestFile });
    if (handlers) {
      const message = `The handler bundle (query/mutation/action) could not be built or loaded. A bundle that loaded before keeps serving; without one, handler calls answer 503 until this is fixed.\n${handlers.message}`;
      problems.push({ message, file: (handlers as UsageError).file });
    }
    if (schema)
      problems.push({ message: `${path.relative(root, this.#schemaFile)}: ${schema.message}`, file: this.#schemaFile });
    for (const error of this.#scan.errors) {
      problems.push({
        message: error.message,
        file: error.file && path.resolve(root, error.file),
        line: error.line,
        column: error.column,
      });
    }
    for (const [file, error] of modules) {
      if (this.#scan.errors.some((e) => e.file === file)) continue;
      problems.push({
        message: `${file} failed to load; the last good version keeps serving.\n${error.message}`,
        file: path.resolve(root, file),
      });
    }
    if (manifest.serverFunctions?.module || !manifest.serverFunctions) {
      const report = compareExports(this.#scan.modules, manifest.serverFunctions?.exports ?? []);
      const lines = describeReport(report, path.relative(root, manifestFile));
      if (lines.length) {
        problems.push({
          message: `Server function exports do not match the manifest:\n${lines.join('\n')}`,
          file: manifestFile,
          warning: true,
        });
      }
    }
    reportProblems(this.#server, problems);
  }
}

/**
 * How a module's evaluation stands, without waiting for one that is still running: a settled
 * promise's reaction runs before `setImmediate`.
 */
function settled(promise: Promise<unknown> | undefined): Promise<'fulfilled' | 'rejected' | 'pending' | 'unloaded'> {
  if (!promise) return Promise.resolve('unloaded');
  return Promise.race([
    promise.then(
      () => 'fulfilled' as const,
      () => 'rejected' as const,
    ),
    new Promise<'pending'>((resolve) => setImmediate(() => resolve('pending'))),
  ]);
}
