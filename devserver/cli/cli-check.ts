import { writeFile } from 'node:fs/promises';
import path from 'node:path';
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
    const serverFunctions = { ...(manifest.raw.serverFunctions as object | undefined), exports: report.names };
    if (!manifest.serverFunctions) Object.assign(serverFunctions, { module: 'server-functions.js' });
    await writeFile(manifestFile, `${JSON.stringify({ ...manifest.raw, serverFunctions }, null, 2)}\n`);
    out(pc.green(`Updated serverFunctions.exports in ${label}: ${report.names.join(', ') || '(none)'}`));
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
