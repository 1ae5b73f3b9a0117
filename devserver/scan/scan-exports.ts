import { parse as babelParse } from '@babel/parser';
import { initSync as initLexer, parse as lexerParse } from 'es-module-lexer';
import { isHandlerKind, type HandlerKind } from '../../runtime/kinds.js';
import { UsageError } from '../common/usage-error.js';

/** How an export's value is known statically. */
export type ExportKind =
  /** `export function f`, `export const f = () => ...` */
  | 'function'
  /** `export const f = wrapper(...)`: a declarative or handler definition, or a wrapped function. */
  | 'call'
  /** A literal, object, array or class: never callable as a server function. */
  | 'value'
  /** Not known without running the module (re-exports, aliases). */
  | 'unknown';

/** `query`, `mutation` or `action` from the server SDK: the export runs in an isolate. */
export type { HandlerKind };

/** One exported name of a server module. */
export interface ExportInfo {
  name: string;
  kind: ExportKind;
  /** Set for `export const name = query({...})` (or mutation/action) with the SDK's function. */
  handler?: HandlerKind;
  /** Offsets of the exported name in the source. */
  start: number;
  end: number;
  line: number;
  column: number;
}

export interface ScanResult {
  exports: ExportInfo[];
  /** Usage errors (`export *`, `export default`), each with file and line. */
  errors: UsageError[];
}

export interface ScanOptions {
  /** Classify each export's kind (always parses with Babel). Default false. */
  classify?: boolean;
}

// Synchronously: a top-level await here would make the plugin unloadable with `require()`, which is
// how Vite loads a `vite.config.js` of a package without "type": "module".
initLexer();

/**
 * Lists the exports of a server module. Plain JS goes through es-module-lexer; TypeScript, JSX and
 * `classify` go through @babel/parser. Syntax errors throw a `UsageError` with file and line.
 *
 * @example
 * scanExports('export async function getData(ctx) {}', 'a.server.js').exports[0].name // 'getData'
 */
export function scanExports(code: string, file: string, options: ScanOptions = {}): ScanResult {
  const lexable = /\.m?js$/.test(file) && !options.classify;
  if (lexable) {
    try {
      return scanWithLexer(code, file);
    } catch {
      // The lexer only says "parse error"; Babel reports the line and the reason.
    }
  }
  return scanWithBabel(code, file);
}

function scanWithLexer(code: string, file: string): ScanResult {
  const [imports, exports] = lexerParse(code, file);
  const result: ScanResult = { exports: [], errors: [] };
  const starStatements: [number, number][] = [];
  for (const imp of imports) {
    if (/^export\s*\*/.test(code.slice(imp.ss, imp.se))) {
      starStatements.push([imp.ss, imp.se]);
      result.errors.push(starError(code, file, imp.ss));
    }
  }
  for (const exp of exports) {
    if (exp.n === 'default') {
      result.errors.push(defaultError(code, file, exp.s));
      continue;
    }
    // `export * as ns from '...'` also lists `ns`; it is reported above as a star export.
    if (starStatements.some(([s, e]) => exp.s >= s && exp.s < e)) continue;
    result.exports.push({ name: exp.n, kind: 'unknown', start: exp.s, end: exp.e, ...lineColumn(code, exp.s) });
  }
  return result;
}

/* eslint-disable @typescript-eslint/no-explicit-any -- Babel's AST is walked structurally here. */
type Node = any;

function scanWithBabel(code: string, file: string): ScanResult {
  const isTs = /\.m?tsx?$/.test(file);
  const isJsx = file.endsWith('x') || !isTs;
  let ast: Node;
  try {
    ast = babelParse(code, {
      sourceType: 'module',
      sourceFilename: file,
      plugins: [...(isTs ? (['typescript'] as const) : []), ...(isJsx ? (['jsx'] as const) : [])],
    });
  } catch (error) {
    const e = error as { message: string; loc?: { line: number; column: number } };
    throw new UsageError(`Syntax error in ${file}: ${e.message}`, {
      file,
      line: e.loc?.line,
      column: e.loc ? e.loc.column + 1 : undefined,
    });
  }
  const body: Node[] = ast.program.body;
  const sdk = sdkBindings(body);
  const localKinds = collectLocalKinds(body, sdk);
  const result: ScanResult = { exports: [], errors: [] };
  const add = (idNode: Node, [kind, handler]: Classified) => {
    const name = idNode.type === 'StringLiteral' ? idNode.value : idNode.name;
    const info: ExportInfo = {
      name,
      kind,
      start: idNode.start,
      end: idNode.end,
      line: idNode.loc.start.line,
      column: idNode.loc.start.column + 1,
    };
    if (handler) info.handler = handler;
    result.exports.push(info);
  };

  for (const node of body) {
    if (node.type === 'ExportAllDeclaration') {
      if (node.exportKind !== 'type') result.errors.push(starError(code, file, node.start));
    } else if (node.type === 'ExportDefaultDeclaration' || node.type === 'TSExportAssignment') {
      result.errors.push(defaultError(code, file, node.start));
    } else if (node.type === 'ExportNamedDeclaration' && node.exportKind !== 'type') {
      if (node.declaration) {
        for (const [idNode, ...classified] of declarationExports(node.declaration, sdk)) add(idNode, classified);
      }
      for (const spec of node.specifiers ?? []) {
        if (spec.exportKind === 'type') continue;
        if (spec.type === 'ExportNamespaceSpecifier') {
          result.errors.push(starError(code, file, node.start));
        } else if (spec.type === 'ExportDefaultSpecifier' || exportedName(spec.exported) === 'default') {
          result.errors.push(defaultError(code, file, node.start));
        } else {
          add(spec.exported, node.source ? ['unknown'] : (localKinds.get(spec.local.name) ?? ['unknown']));
        }
      }
    }
  }
  return result;
}

/** An export's kind, and its handler kind when it is `query(...)`/`mutation(...)`/`action(...)`. */
type Classified = [ExportKind, HandlerKind?];

/** Local names bound to the SDK's `query`/`mutation`/`action`, and namespace imports of the SDK. */
interface SdkBindings {
  handlers: Map<string, HandlerKind>;
  namespaces: Set<string>;
}

const SDK_SERVER = '@favn/vite-plugin-server-fns/server';

function sdkBindings(body: Node[]): SdkBindings {
  const bindings: SdkBindings = { handlers: new Map(), namespaces: new Set() };
  for (const node of body) {
    if (node.type !== 'ImportDeclaration' || node.source.value !== SDK_SERVER || node.importKind === 'type') continue;
    for (const spec of node.specifiers) {
      if (spec.type === 'ImportNamespaceSpecifier') bindings.namespaces.add(spec.local.name);
      else if (spec.type === 'ImportSpecifier' && spec.importKind !== 'type') {
        const imported = exportedName(spec.imported);
        if (isHandlerKind(imported)) bindings.handlers.set(spec.local.name, imported);
      }
    }
  }
  return bindings;
}

function declarationExports(decl: Node, sdk: SdkBindings): [Node, ...Classified][] {
  switch (decl.type) {
    case 'FunctionDeclaration':
      return [[decl.id, 'function']];
    case 'ClassDeclaration':
    case 'TSEnumDeclaration':
      return [[decl.id, 'value']];
    case 'VariableDeclaration':
      return decl.declarations.flatMap((d: Node): [Node, ...Classified][] =>
        d.id.type === 'Identifier'
          ? [[d.id, ...initKind(d.init, sdk)]]
          : patternIdentifiers(d.id).map((id) => [id, 'unknown']),
      );
    default:
      // `declare function`, interfaces, type aliases, namespaces: types only, nothing to call.
      return [];
  }
}

function initKind(init: Node, sdk: SdkBindings): Classified {
  if (!init) return ['value'];
  switch (init.type) {
    case 'ArrowFunctionExpression':
    case 'FunctionExpression':
      return ['function'];
    case 'CallExpression':
      return ['call', handlerKindOf(init.callee, sdk)];
    case 'TSAsExpression':
    case 'TSSatisfiesExpression':
    case 'TSNonNullExpression':
    case 'ParenthesizedExpression':
      return initKind(init.expression, sdk);
    case 'Identifier':
    case 'MemberExpression':
    case 'ConditionalExpression':
    case 'LogicalExpression':
    case 'AwaitExpression':
    case 'SequenceExpression':
      return ['unknown'];
    default:
      return ['value'];
  }
}

function handlerKindOf(callee: Node, sdk: SdkBindings): HandlerKind | undefined {
  if (callee.type === 'Identifier') return sdk.handlers.get(callee.name);
  if (
    callee.type === 'MemberExpression' &&
    !callee.computed &&
    callee.object.type === 'Identifier' &&
    sdk.namespaces.has(callee.object.name)
  ) {
    const name = callee.property.name;
    return isHandlerKind(name) ? name : undefined;
  }
  return undefined;
}

function collectLocalKinds(body: Node[], sdk: SdkBindings): Map<string, Classified> {
  const kinds = new Map<string, Classified>();
  for (const node of body) {
    const decl = node.type === 'ExportNamedDeclaration' ? node.declaration : node;
    if (!decl) continue;
    for (const [id, ...classified] of declarationExports(decl, sdk)) kinds.set(id.name, classified);
  }
  return kinds;
}

function patternIdentifiers(pattern: Node): Node[] {
  switch (pattern.type) {
    case 'Identifier':
      return [pattern];
    case 'ObjectPattern':
      return pattern.properties.flatMap((p: Node) =>
        patternIdentifiers(p.type === 'RestElement' ? p.argument : p.value),
      );
    case 'ArrayPattern':
      return pattern.elements
        .filter(Boolean)
        .flatMap((e: Node) => patternIdentifiers(e.type === 'RestElement' ? e.argument : e));
    case 'AssignmentPattern':
      return patternIdentifiers(pattern.left);
    default:
      return [];
  }
}

function exportedName(node: Node): string {
  return node.type === 'StringLiteral' ? node.value : node.name;
}
/* eslint-enable @typescript-eslint/no-explicit-any */

function starError(code: string, file: string, offset: number): UsageError {
  const where = lineColumn(code, offset);
  return new UsageError(
    `${file}:${where.line}: "export *" is not allowed in a server module: every callable function must be listed by name. ` +
      `Write "export { a, b } from '...'" instead.`,
    { file, ...where },
  );
}

function defaultError(code: string, file: string, offset: number): UsageError {
  const where = lineColumn(code, offset);
  return new UsageError(
    `${file}:${where.line}: "export default" is not allowed in a server module: server functions are called by name. ` +
      `Use a named export such as "export async function getData(ctx) {...}".`,
    { file, ...where },
  );
}

/** 1-based line and column of an offset. */
export function lineColumn(code: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = code.indexOf('\n'); i !== -1 && i < offset; i = code.indexOf('\n', i + 1)) {
    line++;
    lineStart = i + 1;
  }
  return { line, column: offset - lineStart + 1 };
}
