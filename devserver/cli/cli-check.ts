import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseExpression } from '@babel/parser';
import pc from 'picocolors';
import { compareExports, describeReport, isClean } from '../scan/check-exports.js';
import { scanProject } from '../scan/server-modules.js';
import { readManifest } from '../feature/manifest.js';

export interface CheckOptions {
  root: string;
  manifest: string;
  fix: boolean;
  out?: (line: string) => void;
}

/**
 * `favn check`: compares server-module exports with the manifest. Returns the exit code: 0 when
 * they match (or `--fix` made them match), 1 on a mismatch or a module problem.
 *
 * @example
 * process.exitCode = await runCheck({ root: '.', manifest: 'feature.json', fix: false })
 */
export async function runCheck(options: CheckOptions): Promise<number> {
  const out = options.out ?? ((line: string) => process.stdout.write(`${line}\n`));
  const root = path.resolve(options.root);
  const manifestFile = path.resolve(root, options.manifest);
  const manifest = readManifest(manifestFile, { warn: (m) => out(pc.yellow(m)) });
  const scan = await scanProject(root, { classify: true });
  for (const error of scan.errors) out(pc.red(error.message));
  const declared = manifest.serverFunctions?.exports ?? [];
  const report = compareExports(scan.modules, declared);
  const label = path.relative(process.cwd(), manifestFile) || manifestFile;

  if (options.fix && (report.declaredOnly.length || report.exportedOnly.length)) {
    const names = fixedExports(declared, report.names);
    await writeFile(manifestFile, rewriteExports(await readFile(manifestFile, 'utf8'), names));
    out(pc.green(`Updated serverFunctions.exports in ${label}: ${names.join(', ') || '(none)'}`));
    const fixed = { ...report, declaredOnly: [], exportedOnly: [] };
    for (const line of describeReport(fixed, label)) out(pc.red(line));
    return scan.errors.length === 0 && isClean(fixed) ? 0 : 1;
  }
  for (const line of describeReport(report, label)) out(pc.red(line));
  if (scan.errors.length === 0 && isClean(report)) {
    out(pc.green(`${label}: ${report.names.length} server function(s) match serverFunctions.exports.`));
    return 0;
  }
  return 1;
}

/**
 * `serverFunctions.exports` after `--fix`: the declared names in their order, without the ones no
 * module exports (and without repeats), then the new ones in module and source order.
 *
 * @example
 * fixedExports(['b', 'gone', 'a'], ['a', 'b', 'c']) // ['b', 'a', 'c']
 */
export function fixedExports(declared: readonly string[], exported: readonly string[]): string[] {
  const available = new Set(exported);
  const kept = new Set(declared.filter((name) => available.has(name)));
  return [...kept, ...exported.filter((name) => !kept.has(name))];
}

/** The widest line a one-line list may grow to before it is written one name per line. */
const ONE_LINE_WIDTH = 80;

/**
 * The manifest text with `serverFunctions.exports` replaced by `names`. Only the list changes: the
 * other fields keep their text, and the list keeps its layout (one line, or one name per line with
 * its indentation). A manifest without the list is written anew in its own indentation.
 *
 * @example
 * rewriteExports('{"id": "feature-x", "serverFunctions": {"module": "m.js", "exports": ["a"]}}', ['a', 'b'])
 * // '{"id": "feature-x", "serverFunctions": {"module": "m.js", "exports": ["a", "b"]}}'
 */
export function rewriteExports(text: string, names: readonly string[]): string {
  let root: JsonNode;
  try {
    root = parseExpression(text);
  } catch {
    // Valid JSON that is no JavaScript expression (a repeated "__proto__" key).
    return rewritten(text, names);
  }
  const list = property(property(root, 'serverFunctions'), 'exports');
  if (list?.type !== 'ArrayExpression' || list.start == null || list.end == null) return rewritten(text, names);
  return text.slice(0, list.start) + layoutList(text, list.start, list.end, names) + text.slice(list.end);
}

type JsonNode = ReturnType<typeof parseExpression>;

/** The value of `key` in an object literal; the last one wins, as in `JSON.parse`. */
function property(node: JsonNode | undefined, key: string): JsonNode | undefined {
  if (node?.type !== 'ObjectExpression') return undefined;
  const found = node.properties.findLast(
    (p) => p.type === 'ObjectProperty' && p.key.type === 'StringLiteral' && p.key.value === key,
  );
  return found?.type === 'ObjectProperty' ? (found.value as JsonNode) : undefined;
}

/** `names` as a JSON array laid out like the list at `text[start..end)`. */
function layoutList(text: string, start: number, end: number, names: readonly string[]): string {
  if (names.length === 0) return '[]';
  const before = text.slice(start, end);
  const items = names.map((name) => JSON.stringify(name));
  const eol = text.includes('\r\n') ? '\r\n' : '\n';
  const lineStart = text.lastIndexOf('\n', start - 1) + 1;
  const keyIndent = indentAt(text, lineStart);
  if (!before.includes('\n')) {
    const pad = /^\[[ \t]+\S/.test(before) ? ' ' : '';
    // Spaced like the list, or like the file's "key": value pairs when the list has no comma yet.
    const spaced = before.includes(',') ? /,\s/.test(before) : /":\s/.test(text);
    const oneLine = `[${pad}${items.join(spaced ? ', ' : ',')}${pad}]`;
    const lineEnd = text.indexOf('\n', end);
    const width = start - lineStart + oneLine.length + (lineEnd === -1 ? text.length : lineEnd) - end;
    const oldWidth = (lineEnd === -1 ? text.length : lineEnd) - lineStart;
    // A one-line file, or a list that still fits, stays on one line.
    if (!text.trim().includes('\n') || width <= Math.max(ONE_LINE_WIDTH, oldWidth)) return oneLine;
    return `[${eol}${items.map((item) => keyIndent + indentUnit(text) + item).join(`,${eol}`)}${eol}${keyIndent}]`;
  }
  const closeIndent = indentAt(text, text.lastIndexOf('\n', end - 1) + 1);
  // The indentation of the first line that starts with a name.
  const itemLine = before
    .split('\n')
    .slice(1)
    .find((line) => /^[ \t]*"/.test(line));
  const itemIndent = itemLine === undefined ? closeIndent + indentUnit(text) : indentAt(itemLine, 0);
  return `[${eol}${items.map((item) => itemIndent + item).join(`,${eol}`)}${eol}${closeIndent}]`;
}

/** The whole manifest written again with `names`, in the file's indentation and line ends. */
function rewritten(text: string, names: readonly string[]): string {
  const raw = JSON.parse(text) as Record<string, unknown>;
  const current = raw.serverFunctions;
  const serverFunctions =
    typeof current === 'object' && current !== null
      ? { ...current, exports: names }
      : { module: 'server-functions.js', exports: names };
  const eol = text.includes('\r\n') ? '\r\n' : '\n';
  const indent = text.trim().includes('\n') ? indentUnit(text) : undefined;
  const json = JSON.stringify({ ...raw, serverFunctions }, null, indent).replaceAll('\n', eol);
  return `${json}${/\r?\n$/.test(text) ? eol : ''}`;
}

/** The leading spaces or tabs of the line starting at `lineStart`. */
function indentAt(text: string, lineStart: number): string {
  return /^[ \t]*/.exec(text.slice(lineStart, lineStart + 200))![0];
}

/** One level of indentation in `text`: that of its first indented line (two spaces if none). */
function indentUnit(text: string): string {
  return /\n([ \t]+)\S/.exec(text)?.[1] ?? '  ';
}
