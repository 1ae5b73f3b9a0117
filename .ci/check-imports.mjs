#!/usr/bin/env node
// Checks the import structure of plugin/, devserver/ and runtime/ (tests and test fixtures left out):
//   a. no import cycle between files;
//   b. no cycle between folders (a file's folder is its directory: devserver/host, plugin, runtime...);
//   c. dependencies point one way: runtime/ imports nothing of devserver/ or plugin/, devserver/ nothing
//      of plugin/;
//   d. the pure cores import nothing of Vite, Hono or I/O, and of this project only other pure files
//      (and types, which carry no code).
//
// Every kind of import counts: `import`, `import type`, `export ... from`, `import x = require()`,
// `import('./x.js')` with a string literal, and `import('./x.js').T` in a type. A type-only import is
// erased from the output, but it still ties a low-level file to a high-level one, so it counts too;
// the report marks it. Sources are read with the TypeScript parser, so an import inside a comment or a
// string is not one.
//
// Usage: node .ci/check-imports.mjs [root]   (root defaults to the repository)
// Exits 1 with a report when a rule is broken, 0 with a one-line summary otherwise.

import { builtinModules, createRequire } from 'node:module';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// Loaded as CommonJS: importing the 9 MB file as ESM makes Node scan it for export names first.
const ts = createRequire(import.meta.url)('typescript');

/** Folders whose sources are checked, relative to the root. */
const SOURCE_DIRS = ['plugin', 'devserver', 'runtime'];

/** The pure cores, besides every file of runtime/ (which ships to browsers and isolates). */
const PURE_FILES = [
  'devserver/scan/scan-exports.ts',
  'devserver/scan/check-exports.ts',
  'plugin/transform-to-rpc-proxy.ts',
  'devserver/data/compile-query.ts',
  'devserver/data/compile-write.ts',
  'devserver/data/statement.ts',
  'devserver/data/table-model.ts',
  'devserver/host/context.ts',
  'devserver/common/usage-error.ts',
];

/** runtime/ files that bind to a UI library; the only files that may import it. */
const RUNTIME_BINDINGS = { 'runtime/react.ts': ['react', 'react-dom'], 'runtime/vue.ts': ['vue'] };

/**
 * What a pure file may not import: Vite, Hono, databases, isolates, bundlers, the UI library (outside
 * its binding) and every Node built-in. `node:path` is no exception: runtime/ runs in browsers and
 * isolates where it does not exist, and a pure core takes file names as strings and leaves joining
 * and resolving them to its caller.
 */
const IMPURE_PACKAGES = [
  'vite',
  'hono',
  '@hono/*',
  'pg',
  '@electric-sql/*',
  'isolated-vm',
  'isolated-vm-6',
  'isolated-vm-7',
  'rolldown',
  'react',
  'react-dom',
  'vue',
];

/** Higher layers that a lower one may not import, by top folder. */
const FORBIDDEN_LAYERS = { runtime: ['devserver', 'plugin'], devserver: ['plugin'] };

const SOURCE_FILE = /\.(?:[cm]?ts|tsx|[cm]?js|jsx)$/;
const TEST_FILE = /\.test\.[cm]?[jt]sx?$/;
const SKIPPED_DIRS = new Set(['__fixtures__', '__snapshots__', 'node_modules', 'dist']);
const NODE_BUILTINS = new Set(builtinModules.filter((name) => !name.startsWith('_')));

const defaultRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const root = path.resolve(process.argv[2] ?? defaultRoot);
process.exitCode = main(root);

/** Runs every check on `root`, prints the report, returns the exit code. */
function main(root) {
  const files = listSources(root);
  if (files.length === 0) {
    console.error(`check-imports: no source files under ${SOURCE_DIRS.join('/, ')}/ in ${root}`);
    return 1;
  }
  const resolver = createResolver(root, new Set(files));
  const unchecked = [];
  const imports = files.flatMap((file) => readImports(root, file, resolver, unchecked));
  const folders = new Set(files.map(folderOf));
  const counts = `${files.length} files, ${imports.length} imports, ${folders.size} folders`;

  const sections = [
    ['unresolved relative imports', checkUnresolved(imports)],
    ['relative imports the checker cannot follow (use a string literal)', unchecked],
    ['file cycles', checkFileCycles(files, imports)],
    ['folder cycles', checkFolderCycles(folders, imports)],
    ['imports against the layer direction (runtime <- devserver <- plugin)', checkDirection(imports)],
    ['pure cores importing Vite, Hono, I/O or impure files', checkPurity(files, imports)],
  ];
  const problems = sections.reduce((sum, [, lines]) => sum + lines.length, 0);
  if (problems === 0) {
    console.log(`check-imports: ok (${counts}; no cycles, layers point one way, pure cores are pure)`);
    return 0;
  }
  console.log(`check-imports: ${counts}`);
  for (const [title, lines] of sections) {
    if (lines.length === 0) continue;
    console.log(`\n${title} (${lines.length}):`);
    for (const line of lines) console.log(`  ${line}`);
  }
  console.log(`\ncheck-imports: ${problems} problem${problems === 1 ? '' : 's'} (${counts})`);
  return 1;
}

/**
 * One import of one file. `target` is the project file it resolves to (a root-relative path), or
 * null for a package or a file outside the checked folders; `unresolved` is set for a relative path
 * that names no file.
 * @typedef {{ from: string, line: number, specifier: string, kind: 'static' | 'type' | 'dynamic',
 *   target: string | null, unresolved: boolean }} Import
 */

/** Root-relative POSIX paths of the checked sources, sorted. */
function listSources(root) {
  const out = [];
  const walk = (dir) => {
    let entries;
    try {
      entries = readdirSync(path.join(root, dir), { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      const rel = `${dir}/${entry.name}`;
      if (entry.isDirectory()) {
        if (!SKIPPED_DIRS.has(entry.name) && !entry.name.startsWith('.')) walk(rel);
      } else if (SOURCE_FILE.test(entry.name) && !TEST_FILE.test(entry.name) && !entry.name.endsWith('.d.ts')) {
        out.push(rel);
      }
    }
  };
  for (const dir of SOURCE_DIRS) walk(dir);
  return out.sort();
}

/** @returns {Import[]} */
function readImports(root, file, resolver, unchecked = []) {
  const text = readFileSync(path.join(root, file), 'utf8');
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, scriptKind(file));
  const found = [];
  const add = (node, specifierNode, kind) => {
    if (!specifierNode || !ts.isStringLiteralLike(specifierNode)) return;
    const specifier = specifierNode.text;
    const line = source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1;
    const { target, unresolved } = resolver(file, specifier);
    found.push({ from: file, line, specifier, kind, target, unresolved });
  };
  // A path built at run time from a relative start (`../${x}/y.js`) can hide a cycle or a layer
  // violation; a specifier from a variable loads what the program is given (a feature's bundle).
  const noteUnchecked = (node, arg) => {
    if (!arg || !ts.isTemplateExpression(arg) || !arg.head.text.startsWith('.')) return;
    const line = source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1;
    unchecked.push(`${file}:${line} ${node.getText(source)}`);
  };
  const visit = (node) => {
    if (ts.isImportDeclaration(node)) {
      // `import { type A } from` stays in the output as `import {} from` under verbatimModuleSyntax,
      // so only `import type` is type-only.
      add(node, node.moduleSpecifier, node.importClause?.isTypeOnly ? 'type' : 'static');
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier) {
      add(node, node.moduleSpecifier, node.isTypeOnly ? 'type' : 'static');
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      add(node, node.moduleReference.expression, node.isTypeOnly ? 'type' : 'static');
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      add(node, node.arguments[0], 'dynamic');
      noteUnchecked(node, node.arguments[0]);
    } else if (ts.isCallExpression(node) && isRequire(node.expression)) {
      // require('x'), and createRequire(import.meta.url)('x'): a static import in all but syntax.
      add(node, node.arguments[0], 'static');
      noteUnchecked(node, node.arguments[0]);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) {
      add(node, node.argument.literal, 'type');
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

/** `require`, or a call of `createRequire(...)`. */
function isRequire(callee) {
  if (ts.isIdentifier(callee)) return callee.text === 'require';
  return (
    ts.isCallExpression(callee) && ts.isIdentifier(callee.expression) && callee.expression.text === 'createRequire'
  );
}

function scriptKind(file) {
  if (file.endsWith('.tsx')) return ts.ScriptKind.TSX;
  if (file.endsWith('.jsx')) return ts.ScriptKind.JSX;
  if (/\.[cm]?js$/.test(file)) return ts.ScriptKind.JS;
  return ts.ScriptKind.TS;
}

/**
 * Resolves a specifier the way the TypeScript build does (NodeNext): `./x.js` names `x.ts`, `x.tsx` or
 * `x.js`; a bare import of this package by its own name goes through package.json's `exports` back to
 * the source file the built file comes from.
 */
function createResolver(root, sources) {
  const self = readSelfPackage(root);
  const fileExists = (rel) => {
    if (sources.has(rel)) return true;
    const abs = path.join(root, rel);
    return existsSync(abs) && statSync(abs).isFile();
  };
  const resolvePath = (rel) => {
    for (const candidate of candidatesFor(rel)) {
      if (candidate.startsWith('../')) return null;
      if (fileExists(candidate)) return candidate;
    }
    return undefined;
  };
  return (from, specifier) => {
    if (specifier.startsWith('.')) {
      const rel = path.posix.normalize(path.posix.join(path.posix.dirname(from), specifier));
      const resolved = resolvePath(rel);
      if (resolved === undefined) return { target: null, unresolved: true };
      return { target: resolved && isSource(resolved, sources) ? resolved : null, unresolved: false };
    }
    const built = self && selfTarget(self, specifier);
    if (built) {
      const resolved = resolvePath(built);
      return { target: resolved && isSource(resolved, sources) ? resolved : null, unresolved: false };
    }
    return { target: null, unresolved: false };
  };
}

function candidatesFor(rel) {
  const ext = path.posix.extname(rel);
  const stem = rel.slice(0, rel.length - ext.length);
  if (ext === '.js') return [`${stem}.ts`, `${stem}.tsx`, rel];
  if (ext === '.jsx') return [`${stem}.tsx`, rel];
  if (ext === '.mjs') return [`${stem}.mts`, rel];
  if (ext === '.cjs') return [`${stem}.cts`, rel];
  if (/^\.[cm]?tsx?$/.test(ext)) return [rel];
  // No extension, or a dot inside the name (`./rules.server`), or a file that is not code (`.json`).
  return [rel, ...['.ts', '.tsx', '.js', '/index.ts', '/index.tsx', '/index.js'].map((suffix) => `${rel}${suffix}`)];
}

function isSource(rel, sources) {
  return sources.has(rel);
}

function readSelfPackage(root) {
  try {
    const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
    return typeof pkg.name === 'string' && pkg.exports ? { name: pkg.name, exports: pkg.exports } : null;
  } catch {
    return null;
  }
}

/** `@scope/pkg/client` -> `runtime/client.js` (the source path of what `exports` points at). */
function selfTarget(self, specifier) {
  if (specifier !== self.name && !specifier.startsWith(`${self.name}/`)) return null;
  const subpath = `.${specifier.slice(self.name.length)}`;
  const entry = typeof self.exports === 'string' ? (subpath === '.' ? self.exports : null) : self.exports[subpath];
  const target = pickCondition(entry);
  if (!target) return null;
  return path.posix.normalize(target).replace(/^dist\//, '');
}

function pickCondition(entry) {
  if (typeof entry === 'string') return entry;
  if (!entry || typeof entry !== 'object') return null;
  for (const key of ['import', 'default', 'node']) if (key in entry) return pickCondition(entry[key]);
  return null;
}

/** A file's folder: its directory, e.g. `devserver/host`. */
function folderOf(file) {
  return path.posix.dirname(file);
}

/** @param {Import[]} imports */
function checkUnresolved(imports) {
  return imports
    .filter((i) => i.unresolved)
    .map((i) => `${i.from}:${describeEdge(i)} imports '${i.specifier}', which names no file`);
}

/** @param {Import[]} imports */
function checkFileCycles(files, imports) {
  const edges = edgeMap(
    imports.filter((i) => i.target),
    (i) => i.from,
    (i) => i.target,
  );
  return findCycles(files, edges).map((cycle) =>
    cycle
      .map((file, n) => (n === cycle.length - 1 ? file : `${file}:${describeEdge(edges.get(file).get(cycle[n + 1]))}`))
      .join(' -> '),
  );
}

/** @param {Import[]} imports */
function checkFolderCycles(folders, imports) {
  const crossing = imports.filter((i) => i.target && folderOf(i.from) !== folderOf(i.target));
  const edges = edgeMap(
    crossing,
    (i) => folderOf(i.from),
    (i) => folderOf(i.target),
  );
  return findCycles([...folders].sort(), edges).map((cycle) => {
    const lines = [cycle.join(' -> ')];
    for (let n = 0; n < cycle.length - 1; n++) {
      const example = edges.get(cycle[n]).get(cycle[n + 1]);
      lines.push(
        `  ${cycle[n]} -> ${cycle[n + 1]}: ${example.from}:${describeEdge(example)} imports ${example.target}`,
      );
    }
    return lines.join('\n  ');
  });
}

/** @param {Import[]} imports */
function checkDirection(imports) {
  const out = [];
  for (const i of imports) {
    if (!i.target) continue;
    const fromLayer = i.from.split('/')[0];
    const toLayer = i.target.split('/')[0];
    if (FORBIDDEN_LAYERS[fromLayer]?.includes(toLayer)) {
      out.push(`${i.from}:${describeEdge(i)} imports ${i.target} (${fromLayer}/ must not import ${toLayer}/)`);
    }
  }
  return out;
}

/** @param {Import[]} imports */
function checkPurity(files, imports) {
  const pure = new Set([...PURE_FILES, ...files.filter((file) => file.startsWith('runtime/'))]);
  const out = [];
  for (const file of PURE_FILES) {
    if (!files.includes(file)) out.push(`${file} is listed as a pure core but does not exist (update PURE_FILES)`);
  }
  for (const i of imports) {
    if (!pure.has(i.from)) continue;
    const where = `${i.from}:${describeEdge(i)}`;
    if (i.target) {
      // A type carries no code: a pure core may name types of any project file.
      if (!pure.has(i.target) && i.kind !== 'type') {
        out.push(
          `${where} imports ${i.target}, which is not a pure core (make it one and list it, or move the import)`,
        );
      } else if (RUNTIME_BINDINGS[i.target] && !RUNTIME_BINDINGS[i.from]) {
        out.push(`${where} imports ${i.target}, which binds ${RUNTIME_BINDINGS[i.target].join(', ')}`);
      }
    } else if (i.specifier.startsWith('.')) {
      if (!i.unresolved) out.push(`${where} imports '${i.specifier}', outside the checked sources`);
    } else if (isImpurePackage(i.specifier) && !RUNTIME_BINDINGS[i.from]?.includes(packageName(i.specifier))) {
      out.push(`${where} imports '${i.specifier}'`);
    }
  }
  return out;
}

function isImpurePackage(specifier) {
  if (specifier.startsWith('node:') || NODE_BUILTINS.has(specifier) || NODE_BUILTINS.has(specifier.split('/')[0])) {
    return true;
  }
  return IMPURE_PACKAGES.some((name) =>
    name.endsWith('/*')
      ? specifier.startsWith(name.slice(0, -1))
      : specifier === name || specifier.startsWith(`${name}/`),
  );
}

function packageName(specifier) {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

/** `12` or `12 (type)` / `12 (dynamic)`: the line of the import and its kind when not a plain one. */
function describeEdge(i) {
  return i.kind === 'static' ? `${i.line}` : `${i.line} (${i.kind})`;
}

/**
 * from -> to -> the import that stands for the edge: the first plain import, else the first one.
 * @param {Import[]} imports
 */
function edgeMap(imports, fromOf, toOf) {
  const edges = new Map();
  for (const i of imports) {
    const from = fromOf(i);
    const to = toOf(i);
    if (!edges.has(from)) edges.set(from, new Map());
    const out = edges.get(from);
    const known = out.get(to);
    if (!known || (known.kind !== 'static' && i.kind === 'static')) out.set(to, i);
  }
  return edges;
}

/**
 * The cycles of a graph, each as a closed chain [a, b, ..., a]: within every strongly connected
 * component, the shortest cycle through each of its nodes (so every node of a tangle shows up in at
 * least one chain), without repeats.
 */
function findCycles(nodes, edges) {
  const next = (node) => [...(edges.get(node)?.keys() ?? [])].sort();
  const cycles = new Map();
  for (const component of stronglyConnected(nodes, next)) {
    const members = new Set(component);
    const selfLoop = component.length === 1 && next(component[0]).includes(component[0]);
    if (component.length === 1 && !selfLoop) continue;
    for (const start of [...component].sort()) {
      const cycle = shortestCycle(start, (node) => next(node).filter((n) => members.has(n)));
      if (!cycle) continue;
      const ring = rotateToSmallest(cycle.slice(0, -1));
      const key = ring.join('\n');
      if (!cycles.has(key)) cycles.set(key, [...ring, ring[0]]);
    }
  }
  return [...cycles.values()].sort((a, b) => a.length - b.length || a.join().localeCompare(b.join()));
}

function shortestCycle(start, next) {
  const parent = new Map();
  const queue = [start];
  for (let head = 0; head < queue.length; head++) {
    const node = queue[head];
    for (const to of next(node)) {
      if (to === start) {
        const chain = [node];
        while (chain[0] !== start) chain.unshift(parent.get(chain[0]));
        return [...chain, start];
      }
      if (!parent.has(to)) {
        parent.set(to, node);
        queue.push(to);
      }
    }
  }
  return null;
}

function rotateToSmallest(ring) {
  let best = 0;
  for (let n = 1; n < ring.length; n++) if (ring[n] < ring[best]) best = n;
  return [...ring.slice(best), ...ring.slice(0, best)];
}

/** Tarjan's algorithm, iterative so a long chain of imports cannot overflow the stack. */
function stronglyConnected(nodes, next) {
  const index = new Map();
  const low = new Map();
  const onStack = new Set();
  const stack = [];
  const components = [];
  let counter = 0;
  for (const root of nodes) {
    if (index.has(root)) continue;
    const work = [{ node: root, children: null, at: 0 }];
    while (work.length) {
      const frame = work[work.length - 1];
      if (frame.children === null) {
        index.set(frame.node, counter);
        low.set(frame.node, counter);
        counter++;
        stack.push(frame.node);
        onStack.add(frame.node);
        frame.children = next(frame.node);
      }
      if (frame.at < frame.children.length) {
        const child = frame.children[frame.at++];
        if (!index.has(child)) work.push({ node: child, children: null, at: 0 });
        else if (onStack.has(child)) low.set(frame.node, Math.min(low.get(frame.node), index.get(child)));
        continue;
      }
      work.pop();
      const parent = work[work.length - 1];
      if (parent) low.set(parent.node, Math.min(low.get(parent.node), low.get(frame.node)));
      if (low.get(frame.node) === index.get(frame.node)) {
        const component = [];
        let member;
        do {
          member = stack.pop();
          onStack.delete(member);
          component.push(member);
        } while (member !== frame.node);
        components.push(component);
      }
    }
  }
  return components;
}
