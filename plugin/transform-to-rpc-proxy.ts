import MagicString, { type SourceMap } from 'magic-string';
import type { ExportInfo } from '../devserver/scan/scan-exports.js';

export interface ProxyOptions {
  featureId: string;
  /** Specifier the proxy imports `createServerFunction` from. */
  clientModule: string;
  /** Source file name, for the source map. */
  file: string;
  /**
   * Server-rendered code: the stand-ins call the host in-process (`createInProcessFunction` of
   * this specifier) instead of over HTTP, with the built feature's folder for production.
   */
  inProcess?: { module: string; serverDir: string };
}

export interface ProxyOutput {
  code: string;
  map: SourceMap;
  exportNames: string[];
}

/**
 * Replaces a server module with RPC proxies that keep only its export names. Nothing of the
 * module body or its imports survives; each proxy maps back to the export it stands for.
 *
 * @example
 * transformToRpcProxy(code, scanExports(code, file).exports, { featureId, clientModule, file })
 */
export function transformToRpcProxy(code: string, exports: readonly ExportInfo[], options: ProxyOptions): ProxyOutput {
  const s = new MagicString(code, { filename: options.file });
  const sorted = [...exports].sort((a, b) => a.start - b.start);
  let cursor = 0;
  for (const exp of sorted) {
    if (exp.start > cursor) s.remove(cursor, exp.start);
    s.overwrite(exp.start, exp.end, proxyLine(exp.name, options));
    cursor = exp.end;
  }
  if (cursor < code.length) s.remove(cursor, code.length);
  s.prepend(
    options.inProcess
      ? `// Server-rendering stand-in for a server module: each export calls the host in this process.\n` +
          `import { createInProcessFunction as __favnServerFunction } from ${JSON.stringify(options.inProcess.module)};\n`
      : `// Client stand-in for a server module: each export calls the host over RPC.\n` +
          `import { createServerFunction as __favnServerFunction } from ${JSON.stringify(options.clientModule)};\n`,
  );
  const map = s.generateMap({ hires: 'boundary', includeContent: false, source: options.file });
  // Tools fill missing sourcesContent by reading the file, which would ship the server source to
  // the browser. Give them a skeleton instead: same lines and columns, only the export names.
  map.sourcesContent = [skeleton(code, sorted)];
  return { code: s.toString(), map, exportNames: sorted.map((e) => e.name) };
}

function skeleton(code: string, exports: readonly ExportInfo[]): string {
  let out = code.replace(/[^\n]/g, ' ');
  for (const exp of exports) out = out.slice(0, exp.start) + code.slice(exp.start, exp.end) + out.slice(exp.end);
  return out;
}

function proxyLine(name: string, options: ProxyOptions): string {
  const local = `__favn_${name.replace(/[^\w$]/g, '_')}`;
  const exported = /^[A-Za-z_$][\w$]*$/.test(name) ? name : JSON.stringify(name);
  const args = [options.featureId, name, ...(options.inProcess ? [options.inProcess.serverDir] : [])];
  return (
    `const ${local} = /* @__PURE__ */ __favnServerFunction(${args.map((a) => JSON.stringify(a)).join(', ')});\n` +
    `export { ${local} as ${exported} };\n`
  );
}
