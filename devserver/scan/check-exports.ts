import type { ExportInfo } from './scan-exports.js';

/** The scanned exports of one server module (`file` relative to the project root). */
export interface ModuleExports {
  file: string;
  exports: readonly ExportInfo[];
}

export interface Duplicate {
  name: string;
  /** `file:line` of each definition. */
  places: string[];
}

export interface ExportReport {
  /** Every exported name, in module order then source order, without duplicates. */
  names: string[];
  duplicates: Duplicate[];
  /** In `serverFunctions.exports` but exported by no server module. */
  declaredOnly: string[];
  /** Exported by a server module but missing from `serverFunctions.exports`. */
  exportedOnly: string[];
}

/**
 * Compares the union of server-module exports with the manifest's `serverFunctions.exports`.
 *
 * @example
 * compareExports([{ file: 'a.server.ts', exports }], ['getData']).declaredOnly
 */
export function compareExports(modules: readonly ModuleExports[], declared: readonly string[]): ExportReport {
  const places = new Map<string, string[]>();
  for (const mod of modules) {
    for (const exp of mod.exports) {
      const list = places.get(exp.name) ?? [];
      list.push(`${mod.file}:${exp.line}`);
      places.set(exp.name, list);
    }
  }
  const names = [...places.keys()];
  const declaredSet = new Set(declared);
  return {
    names,
    duplicates: [...places].filter(([, p]) => p.length > 1).map(([name, p]) => ({ name, places: p })),
    declaredOnly: declared.filter((name) => !places.has(name)),
    exportedOnly: names.filter((name) => !declaredSet.has(name)),
  };
}

/** True when the manifest and the modules agree and no name is defined twice. */
export function isClean(report: ExportReport): boolean {
  return report.duplicates.length === 0 && report.declaredOnly.length === 0 && report.exportedOnly.length === 0;
}

/**
 * Human-readable lines for every problem in a report, naming the functions on each side.
 *
 * @example
 * describeReport(report, 'feature.json').join('\n')
 */
export function describeReport(report: ExportReport, manifestFile: string): string[] {
  const lines: string[] = [];
  for (const dup of report.duplicates) {
    lines.push(
      `"${dup.name}" is exported by more than one server module (${dup.places.join(' and ')}): server functions share one namespace per feature, rename one.`,
    );
  }
  if (report.declaredOnly.length > 0) {
    lines.push(
      `${manifestFile} declares ${quoteList(report.declaredOnly)} in serverFunctions.exports, but no server module exports ${report.declaredOnly.length > 1 ? 'them' : 'it'}: calls fail with 403 "not exported".`,
    );
  }
  if (report.exportedOnly.length > 0) {
    lines.push(
      `Server modules export ${quoteList(report.exportedOnly)}, missing from serverFunctions.exports in ${manifestFile}: calls fail with 403 "not declared". Run "favn check --fix" to update the manifest.`,
    );
  }
  return lines;
}

function quoteList(names: readonly string[]): string {
  return names.map((n) => `"${n}"`).join(', ');
}
