import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { builtinModules, createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { rolldown, type Plugin } from 'rolldown';
import type { HandlerKind } from '../../runtime/handlers.js';
import { UsageError } from '../common/usage-error.js';

/** A server module and the handlers (`export const x = query(...)`) it declares. */
export interface HandlerModule {
  /** Absolute path. */
  absolute: string;
  handlers: readonly { name: string; kind: HandlerKind }[];
}

/** An alias as Vite resolves them (`resolve.alias`). */
export interface BundleAlias {
  find: string | RegExp;
  replacement: string;
}

export interface HandlerBundle {
  /** A classic script for the isolate; it sets the global `__favn_handlers`. */
  code: string;
  kinds: Record<string, HandlerKind>;
  /** What it was made of, so the next bundle of the same files can be this one (`previous`). */
  sources?: BundleSources;
}

interface BundleSources {
  /** The entry (handler modules and names), aliases and `NODE_ENV`. */
  key: string;
  /** A hash of each file of the module graph as the bundler read it. */
  files: { file: string; hash: string }[];
}

const ENTRY = '\0favn:isolate-entry';
const SDK_SPECIFIER = '@favn/vite-plugin-server-fns/server';
const BUILTINS = new Set([...builtinModules, ...builtinModules.map((m) => `node:${m}`)]);

/**
 * Bundles the handlers of a feature and what they import into one script for the isolate
 * (Rolldown, the bundler under Vite). Node built-ins cannot run there: one still imported after
 * tree-shaking is a usage error naming the import chain.
 *
 * @example
 * const { code } = await bundleHandlers('/repo', [{ absolute: '/repo/src/a.server.ts', handlers: [{ name: 'top', kind: 'query' }] }])
 */
export async function bundleHandlers(
  root: string,
  modules: readonly HandlerModule[],
  options: {
    alias?: readonly BundleAlias[];
    /**
     * The last bundle (a dev server's reload; `null` for the first): returned as it is when the
     * same handlers would be bundled from files that have not changed since, so a save elsewhere
     * bundles nothing. Only a caller that passes it gets `sources` recorded (a build never reuses).
     */
    previous?: HandlerBundle | null;
  } = {},
): Promise<HandlerBundle> {
  const kinds: Record<string, HandlerKind> = {};
  const lines = [`export { runHandler as __favn_run } from ${JSON.stringify(runtimeFile('handlers'))};`];
  for (const mod of modules) {
    if (mod.handlers.length === 0) continue;
    for (const h of mod.handlers) kinds[h.name] = h.kind;
    lines.push(`export { ${mod.handlers.map((h) => h.name).join(', ')} } from ${JSON.stringify(mod.absolute)};`);
  }
  const entry = lines.join('\n');
  const aliases = (options.alias ?? []).map((a) => [String(a.find), a.find instanceof RegExp, a.replacement]);
  const key = JSON.stringify([root, entry, kinds, aliases, process.env.NODE_ENV ?? null]);
  const previous = options.previous;
  if (previous?.sources?.key === key && (await unchanged(previous.sources.files))) return previous;
  const graph = new Set<string>();
  // What each file's text was as the bundler read it; recorded only for a caller that reuses bundles.
  const read = 'previous' in options ? new Map<string, string>() : null;
  const chains = new Map<string, string[]>();
  const bundle = await rolldown({
    input: ENTRY,
    cwd: root,
    platform: 'neutral',
    logLevel: 'silent',
    resolve: {
      conditionNames: ['import', 'module', 'default'],
      mainFields: ['module', 'main'],
      extensions: ['.ts', '.tsx', '.mts', '.js', '.jsx', '.mjs', '.json'],
    },
    // Imports that are never used (e.g. `node:fs` for a plain function beside a handler) vanish.
    treeshake: { moduleSideEffects: (_id, external) => !external },
    transform: { define: { 'process.env.NODE_ENV': JSON.stringify(process.env.NODE_ENV ?? 'production') } },
    plugins: [entryPlugin(entry, options.alias ?? [], chains, graph, read)],
  });
  try {
    // An ES module first: its imports are exactly the externals the kept code still uses.
    const esm = (await bundle.generate({ format: 'es', codeSplitting: false })).output[0];
    const imported = [...esm.code.matchAll(/^import\s[^'"]*?['"]([^'"]+)['"]/gm)].map((m) => m[1]!);
    const forbidden = imported.filter(isBuiltin);
    if (forbidden.length) throw builtinError(root, forbidden, chains);
    if (imported.length)
      throw new UsageError(`Handler code imports ${imported.join(', ')}, which could not be bundled for the isolate.`);
    const { output } = await bundle.generate({
      format: 'iife',
      name: '__favn_handlers',
      exports: 'named',
      codeSplitting: false,
    });
    // A property rather than a `var`, so the prelude can remove it once it took the exports.
    const code = output[0].code.replace(/^var __favn_handlers = /m, 'globalThis.__favn_handlers = ');
    if (code === output[0].code) throw new Error('The handler bundle has an unexpected shape: this is a bug');
    return read ? { code, kinds, sources: await sourcesOf(key, graph, read) } : { code, kinds };
  } finally {
    await bundle.close();
  }
}

/**
 * What the bundle was made of: every file of its module graph with a hash of the text the bundler
 * read (a change while it bundled shows at the next comparison), and the configuration files that
 * decide what its imports resolve to. Nothing when a file's text was not seen (then the next
 * bundle is made anew).
 */
async function sourcesOf(
  key: string,
  graph: ReadonlySet<string>,
  read: ReadonlyMap<string, string>,
): Promise<BundleSources | undefined> {
  const files: BundleSources['files'] = [];
  for (const id of graph) {
    // The entry, the bundler's runtime and externals (built-ins) are not files of the project.
    if (!path.isAbsolute(id)) continue;
    const hash = read.get(id);
    if (hash === undefined) return undefined;
    files.push({ file: id, hash });
  }
  const configs = resolutionConfigs(files.map(({ file }) => file));
  if (!configs) return undefined;
  const hashes = await Promise.all(configs.map((file) => readFile(file, 'utf8').then(hashOf, () => null)));
  for (const [i, hash] of hashes.entries()) {
    if (hash === null) return undefined;
    files.push({ file: configs[i]!, hash });
  }
  return { key, files };
}

/** `tsconfig.json`, `jsconfig.json` and their kin (`tsconfig.app.json`, ...). */
const TS_CONFIG = /^[tj]sconfig(?:\..+)?\.json$/;

/**
 * True for a file name that can change what an import resolves to: `package.json` (`imports`,
 * `exports`, `main`), `tsconfig.json`, `jsconfig.json` and their `tsconfig.*.json` kin (`paths`,
 * `baseUrl`, through `extends` or `references`).
 */
export function isResolutionConfig(name: string): boolean {
  return name === 'package.json' || TS_CONFIG.test(name);
}

/**
 * The configuration files that decide what imports of `files` resolve to: the nearest
 * `package.json` above each file, every `tsconfig*.json` / `jsconfig*.json` beside the nearest
 * `tsconfig.json` or `jsconfig.json`, and every config those `extends` or `references`, as the
 * bundler follows them. `null` when a config cannot be read as JSON with comments (then what it
 * points to is unknown, and the bundle is never reused).
 */
function resolutionConfigs(files: readonly string[]): string[] | null {
  const found = new Set<string>();
  const searched = new Set<string>();
  const nearest = (from: string, has: (dir: string) => boolean, add: (dir: string) => void) => {
    for (let dir = from; ; dir = path.dirname(dir)) {
      if (searched.has(dir)) return;
      searched.add(dir);
      if (has(dir)) return add(dir);
      if (path.dirname(dir) === dir) return;
    }
  };
  for (const file of files) {
    nearest(
      path.dirname(file),
      (d) => existsSync(path.join(d, 'package.json')),
      (d) => found.add(path.join(d, 'package.json')),
    );
  }
  searched.clear();
  const tsconfigs: string[] = [];
  for (const file of files) {
    nearest(
      path.dirname(file),
      (d) => existsSync(path.join(d, 'tsconfig.json')) || existsSync(path.join(d, 'jsconfig.json')),
      (d) => {
        for (const name of readdirSync(d)) if (TS_CONFIG.test(name)) tsconfigs.push(path.join(d, name));
      },
    );
  }
  for (const config of tsconfigs) if (!addFollowed(config, found)) return null;
  return [...found];
}

/**
 * Adds `config` and the configs it `extends` (relative paths and packages) or `references` (files
 * or folders), and theirs, to `found`. False when one of them is not JSON with comments.
 */
function addFollowed(config: string, found: Set<string>): boolean {
  if (found.has(config)) return true;
  found.add(config);
  let parsed: { extends?: unknown; references?: unknown };
  try {
    parsed = parseJsonWithComments(readFileSync(config, 'utf8')) as typeof parsed;
  } catch {
    // Unreadable (a folder, no permission): its hash cannot be taken either, so no reuse.
    return false;
  }
  if (typeof parsed !== 'object' || parsed === null) return true;
  const followed: string[] = [];
  const require = createRequire(config);
  const extended = typeof parsed.extends === 'string' ? [parsed.extends] : parsed.extends;
  for (const name of Array.isArray(extended) ? extended : []) {
    if (typeof name !== 'string') continue;
    if (/^\.\.?[\\/]/.test(name) || path.isAbsolute(name)) {
      // TypeScript takes the name as it is when that file exists, else with `.json`: both, to be safe.
      const file = path.resolve(path.dirname(config), name);
      followed.push(file, `${file}.json`);
      continue;
    }
    for (const spec of [name, `${name}.json`, `${name}/tsconfig.json`]) {
      try {
        followed.push(require.resolve(spec));
        break;
      } catch {
        // Not this spelling; TypeScript tries the same ones.
      }
    }
  }
  for (const reference of Array.isArray(parsed.references) ? (parsed.references as unknown[]) : []) {
    const target = (reference as { path?: unknown } | null)?.path;
    if (typeof target !== 'string') continue;
    const file = path.resolve(path.dirname(config), target);
    followed.push(file.endsWith('.json') ? file : path.join(file, 'tsconfig.json'));
  }
  return followed.filter((file) => existsSync(file)).every((file) => addFollowed(file, found));
}

/** Whitespace, then the end of a list or an object: the comma before it is a trailing comma. */
const TRAILING_COMMA_END = /\s*[}\]]/y;

/**
 * JSON as tsconfig files are written: `//` and `/* *\/` comments, trailing commas (comments may
 * stand between one and its bracket) and a byte order mark.
 */
function parseJsonWithComments(text: string): unknown {
  return JSON.parse(outsideStrings(outsideStrings(text.replace(/^\uFEFF/, ''), dropComment), dropTrailingComma));
}

/** Rewrites `text` outside its JSON strings: `at(text, i)` returns what stands for text[i..] and how far it reached. */
function outsideStrings(text: string, at: (text: string, i: number) => [string, number] | null): string {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '"') {
      const start = i;
      for (i++; i < text.length && text[i] !== '"'; i++) if (text[i] === '\\') i++;
      out += text.slice(start, i + 1);
      continue;
    }
    const replaced = at(text, i);
    if (!replaced) out += text[i];
    else [out, i] = [out + replaced[0], replaced[1]];
  }
  return out;
}

function dropComment(text: string, i: number): [string, number] | null {
  if (text[i] !== '/') return null;
  if (text[i + 1] === '/') {
    const end = text.indexOf('\n', i);
    return ['\n', end === -1 ? text.length : end];
  }
  if (text[i + 1] === '*') {
    const close = text.indexOf('*/', i + 2);
    return [' ', close === -1 ? text.length : close + 1];
  }
  return null;
}

function dropTrailingComma(text: string, i: number): [string, number] | null {
  if (text[i] !== ',') return null;
  TRAILING_COMMA_END.lastIndex = i + 1;
  return TRAILING_COMMA_END.test(text) ? ['', i] : null;
}

/** True when every file still has the text it had (sizes and times can stay while text changes). */
async function unchanged(files: BundleSources['files']): Promise<boolean> {
  const now = await Promise.all(files.map(({ file }) => readFile(file, 'utf8').then(hashOf, () => null)));
  return now.every((hash, i) => hash === files[i]!.hash);
}

function hashOf(text: string): string {
  return createHash('sha1').update(text).digest('base64');
}

function entryPlugin(
  entry: string,
  alias: readonly BundleAlias[],
  chains: Map<string, string[]>,
  graph: Set<string>,
  read: Map<string, string> | null,
): Plugin {
  return {
    name: 'favn:isolate-entry',
    async resolveId(source, importer) {
      if (source === ENTRY) return ENTRY;
      if (source === SDK_SPECIFIER || source.startsWith(`${SDK_SPECIFIER}/`)) return runtimeFile('server');
      if (isBuiltin(source)) return { id: source, external: true };
      for (const a of alias) {
        const matches =
          typeof a.find === 'string' ? source === a.find || source.startsWith(`${a.find}/`) : a.find.test(source);
        if (!matches) continue;
        const replaced =
          typeof a.find === 'string'
            ? a.replacement + source.slice(a.find.length)
            : source.replace(a.find, a.replacement);
        return this.resolve(replaced, importer, { skipSelf: true });
      }
      return null;
    },
    load(id) {
      return id === ENTRY ? entry : null;
    },
    transform(code, id) {
      // The text as read from the file (before any transform): what `unchanged` compares.
      if (read && path.isAbsolute(id)) read.set(id, hashOf(code));
      return null;
    },
    generateBundle(_options, output) {
      for (const id of this.getModuleIds()) graph.add(id);
      // For each built-in, a chain of kept modules from a handler module down to the importer.
      for (const chunk of Object.values(output)) {
        if (chunk.type !== 'chunk') continue;
        const kept = (id: string) => (chunk.modules[id]?.renderedLength ?? 0) > 0;
        for (const id of Object.keys(chunk.modules)) {
          for (const dep of this.getModuleInfo(id)?.importedIds ?? []) {
            if (!isBuiltin(dep) || chains.has(dep) || !kept(id)) continue;
            const chain = [id];
            let parent = this.getModuleInfo(id)?.importers.find((p) => p !== ENTRY && !chain.includes(p));
            while (parent) {
              chain.unshift(parent);
              parent = this.getModuleInfo(parent)?.importers.find((p) => p !== ENTRY && !chain.includes(p));
            }
            chains.set(dep, chain);
          }
        }
      }
    },
  };
}

function isBuiltin(id: string): boolean {
  return BUILTINS.has(id) || BUILTINS.has(id.split('/')[0]!);
}

/** A file of this package's runtime, compiled (`dist/`) or as source when run from source. */
function runtimeFile(name: string): string {
  const js = fileURLToPath(new URL(`../../runtime/${name}.js`, import.meta.url));
  return existsSync(js) ? js : js.replace(/\.js$/, '.ts');
}

function builtinError(root: string, forbidden: string[], chains: Map<string, string[]>): UsageError {
  const lines = forbidden.map(
    (builtin) => `  ${[...(chains.get(builtin) ?? []).map((id) => relative(root, id)), builtin].join(' -> ')}`,
  );
  return new UsageError(
    `Handler code imports Node's "${forbidden[0]}", which does not exist in the isolate where query/mutation/action run:\n${lines.join('\n')}\n` +
      'Use Node APIs from a plain server function (export async function f(ctx) {...}), which runs in the host process, or call out with ctx.fetch from an action.',
  );
}

function relative(root: string, id: string): string {
  return path.isAbsolute(id) ? path.relative(root, id).split(path.sep).join('/') : id;
}
