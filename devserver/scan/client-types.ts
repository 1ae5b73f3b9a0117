import { existsSync } from 'node:fs';
import { lstat, mkdir, readdir, readFile, rmdir, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parse as babelParse } from '@babel/parser';
import { findServerModules } from './server-modules.js';

/** Where the client types live, relative to the feature root (`include` it in tsconfig.app.json). */
export const CLIENT_TYPES_DIR = '.favn/types';

/** The file a tsconfig includes; it augments each server module with the client's signatures. */
export const CLIENT_TYPES_FILE = 'server-fns.d.ts';

const PACKAGE = '@favn/vite-plugin-server-fns/server';
const TYPED_MODULE = /\.(?:ts|tsx|mts)$/;
const HEADER =
  '// Written by @favn/vite-plugin-server-fns when `vite` or `vite build` starts, on saves in dev, and by `favn types`.';

export interface ClientTypesOptions {
  /** The schema module, relative to the root (default `server/schema.ts`); skipped when absent. */
  schema?: string;
  /** Globs of server modules to leave out, as the plugin's `ignore`. */
  ignore?: readonly string[];
  /** Write even without a `tsconfig.json` at the root (`favn types` asks for it). */
  force?: boolean;
}

export interface ClientTypesResult {
  /** The written declaration file, absolute. */
  file: string;
  /** Whether anything on disk changed. */
  changed: boolean;
  /** Plain functions typed for the client, as `file#name`. */
  functions: string[];
  /** Whether the schema is registered. */
  schema: boolean;
  /** Why some exports keep their server signature (e.g. a `const` arrow function). */
  warnings: string[];
}

/**
 * Writes `.favn/types/`: for each TypeScript server module, a copy its types are read from and an
 * augmentation that gives every exported plain function the client's signature (`ctx` removed, the
 * result JSON-serialized), plus the schema's registration so `ctx.db`, declarative functions and
 * `useExtensionStorage()` are typed by it. A module's own declarations cannot describe themselves
 * (the new signature would refer to its own type), hence the copy; it is `@ts-nocheck`, so a type
 * error of a module is reported once, at the module.
 *
 * @example
 * await writeClientTypes('/repo') // tsconfig.app.json: "include": ["src", ".favn/types"]
 */
export async function writeClientTypes(root: string, options: ClientTypesOptions = {}): Promise<ClientTypesResult> {
  const dir = path.join(root, CLIENT_TYPES_DIR);
  const file = path.join(dir, CLIENT_TYPES_FILE);
  if (!options.force && !existsSync(path.join(root, 'tsconfig.json')) && !existsSync(file))
    return { file, changed: false, functions: [], schema: false, warnings: [] }; // a JavaScript project
  await refuseLinks(root, dir);
  const modules = (await findServerModules(root, options.ignore)).filter((m) => TYPED_MODULE.test(m));
  const result: ClientTypesResult = { file, changed: false, functions: [], schema: false, warnings: [] };
  const copies = new Map<string, string>();
  const blocks: string[] = [];
  for (const absolute of modules) {
    const relative = path.relative(root, absolute).split(path.sep).join('/');
    const copy = path.join(dir, 'modules', relative);
    let found: PlainExports;
    let copied: string;
    try {
      const code = await readFile(absolute, 'utf8');
      found = plainExports(code, relative);
      if (!found.names.length) {
        for (const warning of found.warnings) result.warnings.push(warning);
        continue;
      }
      copied = `// @ts-nocheck\n${rewriteImports(code, relative, path.dirname(absolute), path.dirname(copy))}`;
    } catch (error) {
      // A syntax error is the export check's to report; anything else is named here. Either way the
      // other modules' types are still written.
      if (!(error instanceof SyntaxError)) result.warnings.push(`${relative}: no client types (${messageOf(error)})`);
      continue;
    }
    for (const warning of found.warnings) result.warnings.push(warning);
    copies.set(copy, copied);
    const from = JSON.stringify(`./modules/${withoutExtension(relative)}`);
    const lines = found.names.map((name) => {
      const type = `typeof import(${from}).${name}`;
      return `  export function ${name}(...args: PlainClientArgs<${type}>): Promise<ClientResult<${type}>>;`;
    });
    blocks.push(`declare module ${JSON.stringify(relativeSpecifier(dir, absolute))} {\n${lines.join('\n')}\n}`);
    for (const name of found.names) result.functions.push(`${relative}#${name}`);
  }
  const schema = path.join(root, options.schema ?? 'server/schema.ts');
  if (existsSync(schema)) {
    result.schema = true;
    blocks.unshift(
      `declare module '${PACKAGE}' {\n  interface Register {\n    schema: typeof import(${JSON.stringify(relativeSpecifier(dir, schema))}).default;\n  }\n}`,
    );
  }
  const imports = result.functions.length ? [`import type { ClientResult, PlainClientArgs } from '${PACKAGE}';`] : [];
  const text = [HEADER, ...imports, 'export {};', '', ...blocks, ''].join('\n');
  result.changed = await writeIfChanged(file, text);
  for (const [copy, content] of copies) if (await writeIfChanged(copy, content)) result.changed = true;
  if (await removeStale(path.join(dir, 'modules'), new Set(copies.keys()))) result.changed = true;
  return result;
}

interface PlainExports {
  names: string[];
  warnings: string[];
}

/** Exported function declarations (plain server functions); `const` functions are warned about. */
function plainExports(code: string, file: string): PlainExports {
  const ast = babelParse(code, {
    sourceType: 'module',
    plugins: file.endsWith('x') ? ['typescript', 'jsx'] : ['typescript'],
    errorRecovery: false,
  });
  const functions = new Set<string>();
  const consts = new Set<string>();
  for (const node of ast.program.body) {
    const declaration = node.type === 'ExportNamedDeclaration' ? node.declaration : node;
    if (declaration?.type === 'FunctionDeclaration' && declaration.id) functions.add(declaration.id.name);
    if (declaration?.type === 'VariableDeclaration') {
      for (const item of declaration.declarations) {
        const init = item.init;
        if (
          item.id.type === 'Identifier' &&
          (init?.type === 'ArrowFunctionExpression' || init?.type === 'FunctionExpression')
        )
          consts.add(item.id.name);
      }
    }
  }
  const names: string[] = [];
  const warnings: string[] = [];
  const add = (exported: string, local: string) => {
    if (functions.has(local)) names.push(exported);
    else if (consts.has(local))
      warnings.push(
        `${file}: "${exported}" is a const function, so components see its server signature (with ctx): write it as "export async function ${exported}(ctx, ...)"`,
      );
  };
  for (const node of ast.program.body) {
    if (node.type !== 'ExportNamedDeclaration' || node.exportKind === 'type') continue;
    const declaration = node.declaration;
    if (declaration?.type === 'FunctionDeclaration' && declaration.id) add(declaration.id.name, declaration.id.name);
    if (declaration?.type === 'VariableDeclaration')
      for (const item of declaration.declarations) if (item.id.type === 'Identifier') add(item.id.name, item.id.name);
    if (!node.source)
      for (const spec of node.specifiers) {
        if (spec.type !== 'ExportSpecifier' || spec.exportKind === 'type') continue;
        const exported = spec.exported.type === 'Identifier' ? spec.exported.name : spec.exported.value;
        add(exported, spec.local.name);
      }
  }
  return { names: [...new Set(names)].filter((name) => /^[A-Za-z_$][\w$]*$/.test(name)), warnings };
}

/** The copy's relative imports point back at the files beside the original module. */
function rewriteImports(code: string, file: string, fromDir: string, toDir: string): string {
  const ast = babelParse(code, {
    sourceType: 'module',
    plugins: file.endsWith('x') ? ['typescript', 'jsx'] : ['typescript'],
  });
  const literals: { start: number; end: number; value: string }[] = [];
  const pick = (value: unknown) => {
    const literal = value as { type?: string; value?: unknown; start?: number; end?: number } | undefined;
    if (literal?.type === 'StringLiteral' && typeof literal.value === 'string' && literal.value.startsWith('.'))
      literals.push({ start: literal.start!, end: literal.end!, value: literal.value });
  };
  // A stack, not recursion: a deeply nested expression must not overflow the call stack.
  const stack: unknown[] = [ast.program];
  while (stack.length) {
    const node = stack.pop();
    if (!node || typeof node !== 'object') continue;
    if (Array.isArray(node)) {
      for (const item of node) stack.push(item);
      continue;
    }
    const n = node as { type?: string; source?: unknown; argument?: unknown; arguments?: unknown[]; callee?: unknown };
    if (n.type === 'ImportDeclaration' || n.type === 'ExportNamedDeclaration' || n.type === 'ExportAllDeclaration')
      pick(n.source);
    if (n.type === 'TSImportType') pick((n.argument as { type?: string; literal?: unknown })?.literal ?? n.argument);
    if (n.type === 'CallExpression' && (n.callee as { type?: string })?.type === 'Import') pick(n.arguments?.[0]);
    if (n.type === 'ImportExpression') pick(n.source);
    for (const [key, value] of Object.entries(node))
      if (key !== 'loc' && key !== 'leadingComments' && key !== 'trailingComments' && key !== 'extra')
        stack.push(value);
  }
  let out = code;
  for (const literal of literals.sort((a, b) => b.start - a.start)) {
    const target = path.resolve(fromDir, literal.value);
    let specifier = path.relative(toDir, target).split(path.sep).join('/');
    if (!specifier.startsWith('.')) specifier = `./${specifier}`;
    out = `${out.slice(0, literal.start)}${JSON.stringify(specifier)}${out.slice(literal.end)}`;
  }
  return out;
}

/** A specifier from `dir` to `file` that TypeScript resolves to it (`.mts` as `.mjs`). */
function relativeSpecifier(dir: string, file: string): string {
  const target = file.endsWith('.mts') ? file.replace(/\.mts$/, '.mjs') : withoutExtension(file);
  const specifier = path.relative(dir, target).split(path.sep).join('/');
  return specifier.startsWith('.') ? specifier : `./${specifier}`;
}

function withoutExtension(file: string): string {
  return file.endsWith('.mts') ? file.replace(/\.mts$/, '.mjs') : file.replace(/\.(?:ts|tsx|js|jsx)$/, '');
}

async function writeIfChanged(file: string, text: string): Promise<boolean> {
  const current = await readFile(file, 'utf8').catch(() => null);
  if (current === text) return false;
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, text);
  return true;
}

/**
 * `.favn/types` is ours: a symbolic link anywhere in it (one committed, or planted) would make a
 * write or a removal land outside it, so links are removed (never followed) before anything is
 * written, and a linked `.favn` or `.favn/types` is refused.
 */
async function refuseLinks(root: string, dir: string): Promise<void> {
  for (const folder of [path.dirname(dir), dir]) {
    const stat = await lstat(folder).catch(() => null);
    if (stat?.isSymbolicLink())
      throw new Error(`${path.relative(root, folder)} is a symbolic link: remove it, the plugin writes its own folder`);
  }
  const stack = [dir];
  while (stack.length) {
    const folder = stack.pop()!;
    const entries = await readdir(folder, { withFileTypes: true }).catch(() => []);
    for (const entry of entries) {
      const full = path.join(folder, entry.name);
      if (entry.isSymbolicLink()) await unlink(full);
      else if (entry.isDirectory()) stack.push(full);
    }
  }
}

/** Removes copies of modules that are gone, and folders left empty; true when a copy was removed. */
async function removeStale(dir: string, keep: ReadonlySet<string>): Promise<boolean> {
  let removed = false;
  const walk = async (folder: string): Promise<boolean> => {
    const entries = await readdir(folder, { withFileTypes: true }).catch(() => []);
    let empty = true;
    for (const entry of entries) {
      const full = path.join(folder, entry.name);
      if (entry.isDirectory() && !entry.isSymbolicLink()) {
        if (await walk(full)) await rmdir(full).catch(() => undefined);
        else empty = false;
      } else if (!keep.has(full)) {
        await unlink(full);
        removed = true;
      } else empty = false;
    }
    return empty;
  };
  await walk(dir);
  return removed;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
