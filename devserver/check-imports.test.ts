import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';

const CHECKER = fileURLToPath(new URL('../.ci/check-imports.mjs', import.meta.url));

/**
 * The smallest tree that passes: every pure core the checker lists, a runtime that imports only
 * itself, a host that uses Hono and Node, and a plugin on top of both.
 */
const CLEAN: Record<string, string> = {
  'runtime/protocol.ts': `export const RPC_PREFIX = '/rpc';\n`,
  'runtime/client.ts': `import { RPC_PREFIX } from './protocol.js';\nexport const url = (id: string) => \`\${RPC_PREFIX}/\${id}\`;\n`,
  'runtime/react.ts': `import { useState } from 'react';\nimport { url } from './client.js';\nexport const useUrl = () => useState(url('x'));\n`,
  'devserver/scan/scan-exports.ts': `import { parse } from '@babel/parser';\nexport type ExportInfo = { name: string };\nexport const scan = (code: string) => parse(code);\n`,
  'devserver/scan/check-exports.ts': `import type { ExportInfo } from './scan-exports.js';\nexport const names = (e: ExportInfo[]) => e.map((x) => x.name);\n`,
  'devserver/data/table-model.ts': `export type TableModel = { name: string };\n`,
  'devserver/data/statement.ts': `import type { TableModel } from './table-model.js';\nexport const sql = (t: TableModel) => \`select * from \${t.name}\`;\n`,
  'devserver/data/compile-query.ts': `import { sql } from './statement.js';\nexport { sql };\n`,
  'devserver/data/compile-write.ts': `export * from './statement.js';\n`,
  'devserver/data/open-database.ts': `import { PGlite } from '@electric-sql/pglite';\nimport type { TableModel } from './table-model.js';\nexport const open = (_t: TableModel) => new PGlite();\n`,
  'devserver/host/context.ts': `import { RPC_PREFIX } from '../../runtime/protocol.js';\nexport const prefix = RPC_PREFIX;\n`,
  'devserver/common/usage-error.ts': `export class UsageError extends Error {}\n`,
  'devserver/host/host.ts': [
    `import { Hono } from 'hono';`,
    `import { readFile } from 'node:fs/promises';`,
    `import { prefix } from './context.js';`,
    `import { open } from '../data/open-database.js';`,
    `export const createHost = () => new Hono().get(prefix, async () => new Response(await readFile('x')));`,
    `export const load = () => import('../data/compile-query.js').then(() => open);`,
    ``,
  ].join('\n'),
  'devserver/index.ts': `export { createHost } from './host/host.js';\n`,
  'plugin/transform-to-rpc-proxy.ts': `import MagicString from 'magic-string';\nimport type { ExportInfo } from '../devserver/scan/scan-exports.js';\nexport const proxy = (code: string, _e: ExportInfo[]) => new MagicString(code).toString();\n`,
  'plugin/index.ts': `import type { Plugin } from 'vite';\nimport { createHost } from '../devserver/index.js';\nexport const plugin = (): Plugin => ({ name: 'x', configureServer: () => void createHost() });\n`,
  // Left out of the check: a test may import anything, and so may a fixture.
  'devserver/host/host.test.ts': `import { createHost } from './host.js';\nimport '../../plugin/index.js';\ncreateHost();\n`,
  'plugin/__fixtures__/a.server.ts': `import 'vite';\nimport '../index.js';\n`,
};

const roots: string[] = [];
afterEach(() => {
  for (const root of roots.splice(0)) rmSync(root, { recursive: true, force: true });
});

/** Writes the clean tree with `changes` on top (a null content deletes the file) and runs the checker. */
function check(changes: Record<string, string | null> = {}): { status: number | null; output: string } {
  const root = mkdtempSync(path.join(tmpdir(), 'check-imports-'));
  roots.push(root);
  for (const [file, text] of Object.entries({ ...CLEAN, ...changes })) {
    if (text === null) continue;
    mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
    writeFileSync(path.join(root, file), text);
  }
  const run = spawnSync(process.execPath, [CHECKER, root], { encoding: 'utf8' });
  return { status: run.status, output: run.stdout + run.stderr };
}

// Each case starts Node and loads the TypeScript parser: about a second on a busy machine.
describe('check-imports', { timeout: 30_000 }, () => {
  it('passes a clean tree with a one-line summary of what it read', () => {
    const { status, output } = check();
    expect(output).toBe(
      'check-imports: ok (16 files, 21 imports, 7 folders; no cycles, layers point one way, pure cores are pure)\n',
    );
    expect(status).toBe(0);
  });

  it('reports a cycle between files as a chain, through import type and export from too', () => {
    const { status, output } = check({
      'devserver/data/table-model.ts': `import type { Row } from './row.js';\nexport type TableModel = { name: string; row?: Row };\n`,
      'devserver/data/row.ts': `export { sql as render } from './statement.js';\nexport type Row = object;\n`,
    });
    expect(status).toBe(1);
    expect(output).toContain(
      'file cycles (1):\n' +
        '  devserver/data/row.ts:1 -> devserver/data/statement.ts:1 (type) -> devserver/data/table-model.ts:1 (type)' +
        ' -> devserver/data/row.ts\n',
    );
    // A type carries no code: the pure table model may name a type of row.ts, which is not pure.
    expect(output).not.toContain('which is not a pure core');
    expect(output).toMatch(/check-imports: 1 problem \(17 files, 23 imports, 7 folders\)\n$/);
  });

  it('reports a cycle through a dynamic import with a string literal', () => {
    const { status, output } = check({
      'devserver/host/late.ts': `export const late = () => import('./host.js');\n`,
      'devserver/host/host.ts': `${CLEAN['devserver/host/host.ts']}import './late.js';\n`,
    });
    expect(status).toBe(1);
    expect(output).toContain(
      'devserver/host/host.ts:7 -> devserver/host/late.ts:1 (dynamic) -> devserver/host/host.ts\n',
    );
  });

  it('follows require and createRequire, and reports a relative import built at run time', () => {
    const { status, output } = check({
      'devserver/host/late.ts': [
        `import { createRequire } from 'node:module';`,
        `export const late = () => createRequire(import.meta.url)('./host.js');`,
        `export const any = (where: string) => import(\`../\${where}/open-database.js\`);`,
        ``,
      ].join('\n'),
      'devserver/host/host.ts': `${CLEAN['devserver/host/host.ts']}require('./late.js');\n`,
    });
    expect(status).toBe(1);
    expect(output).toContain('devserver/host/host.ts:7 -> devserver/host/late.ts:2 -> devserver/host/host.ts\n');
    expect(output).toContain(
      'relative imports the checker cannot follow (use a string literal) (1):\n' +
        '  devserver/host/late.ts:3 import(`../${where}/open-database.js`)\n',
    );
  });

  it('reports a cycle between folders with one example import per edge, when no file cycle exists', () => {
    const { status, output } = check({
      'devserver/data/open-database.ts': `import { logger } from '../host/logger.js';\nexport const open = () => logger;\n`,
      'devserver/host/logger.ts': `export const logger = console;\n`,
    });
    expect(status).toBe(1);
    expect(output).not.toContain('file cycles');
    expect(output).toContain(
      'folder cycles (1):\n' +
        '  devserver/data -> devserver/host -> devserver/data\n' +
        '    devserver/data -> devserver/host: devserver/data/open-database.ts:1 imports devserver/host/logger.ts\n' +
        '    devserver/host -> devserver/data: devserver/host/host.ts:4 imports devserver/data/open-database.ts\n',
    );
  });

  it('reports a pure core that imports Hono, Node, Vite or the React binding, by type, statically or dynamically', () => {
    const { status, output } = check({
      'devserver/host/context.ts': [
        `import type { Context } from 'hono';`,
        `// import { readFile } from 'node:fs'; in a comment is not an import`,
        `import path from 'node:path';`,
        `import { useUrl } from '../../runtime/react.js';`,
        `export const load = () => import('vite');`,
        `export const name = (c: Context) => path.basename(c.req.path) + String(useUrl);`,
        ``,
      ].join('\n'),
      'runtime/protocol.ts': `import { createElement } from 'react';\nexport const RPC_PREFIX = String(createElement);\n`,
    });
    expect(status).toBe(1);
    expect(output).toContain(
      'pure cores importing Vite, Hono, I/O or impure files (5):\n' +
        "  devserver/host/context.ts:1 (type) imports 'hono'\n" +
        "  devserver/host/context.ts:3 imports 'node:path'\n" +
        '  devserver/host/context.ts:4 imports runtime/react.ts, which binds react, react-dom\n' +
        "  devserver/host/context.ts:5 (dynamic) imports 'vite'\n" +
        "  runtime/protocol.ts:1 imports 'react'\n",
    );
    expect(output).not.toContain('readFile');
  });

  it('reports runtime importing devserver and devserver importing plugin, also by the package name', () => {
    const { status, output } = check({
      'package.json': JSON.stringify({
        name: '@scope/pkg',
        exports: { './devserver': { types: './dist/devserver/index.d.ts', default: './dist/devserver/index.js' } },
      }),
      'runtime/client.ts': `import type { createHost } from '@scope/pkg/devserver';\nexport type Host = typeof createHost;\n`,
      'devserver/scan/check-exports.ts': `export * from '../../plugin/transform-to-rpc-proxy.js';\n`,
    });
    expect(status).toBe(1);
    expect(output).toContain(
      'imports against the layer direction (runtime <- devserver <- plugin) (2):\n' +
        '  devserver/scan/check-exports.ts:1 imports plugin/transform-to-rpc-proxy.ts (devserver/ must not import plugin/)\n' +
        '  runtime/client.ts:1 (type) imports devserver/index.ts (runtime/ must not import devserver/)\n',
    );
  });

  it('reports an import that names no file, and a pure core that is listed but gone', () => {
    const { status, output } = check({
      'devserver/scan/check-exports.ts': null,
      'plugin/transform-to-rpc-proxy.ts': `import type { ExportInfo } from '../devserver/scan/check-exports.js';\nexport type X = ExportInfo;\n`,
    });
    expect(status).toBe(1);
    expect(output).toContain(
      "plugin/transform-to-rpc-proxy.ts:1 (type) imports '../devserver/scan/check-exports.js', which names no file",
    );
    expect(output).toContain('devserver/scan/check-exports.ts is listed as a pure core but does not exist');
  });
});
