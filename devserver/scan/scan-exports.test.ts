import { describe, expect, it } from 'vitest';
import { scanExports } from './scan-exports.js';

const names = (code: string, file = 'a.server.ts', classify = false) =>
  scanExports(code, file, { classify }).exports.map((e) => e.name);

describe('scanExports', () => {
  it('finds function, const and renamed exports in JS (lexer path) and TS (Babel path)', () => {
    const code = `
      export async function getData(ctx) {}
      export const saveData = async (ctx) => {};
      function local() {}
      export { local as renamed, local };
      export { other } from './other.js';
    `;
    for (const file of ['a.server.js', 'a.server.ts']) {
      expect(names(code, file)).toEqual(['getData', 'saveData', 'renamed', 'local', 'other']);
    }
  });

  it('skips TypeScript type-only exports', () => {
    const code = `
      export type A = string; export interface B { x: 1 }
      export declare function d(): void;
      type C = number; export type { C };
      export { type C as D };
      export async function real() {}
    `;
    expect(names(code, 'a.server.ts')).toEqual(['real']);
  });

  it('reports export * and export default with file and line', () => {
    for (const file of ['a.server.js', 'a.server.ts']) {
      const result = scanExports(
        `export async function ok() {}\nexport * from './x.js';\nexport default function () {}\n`,
        file,
      );
      expect(result.exports.map((e) => e.name)).toEqual(['ok']);
      expect(result.errors.map((e) => [e.file, e.line])).toEqual([
        [file, 2],
        [file, 3],
      ]);
      expect(result.errors[0]?.message).toMatch(/"export \*" is not allowed.*export \{ a, b \} from/);
      expect(result.errors[1]?.message).toMatch(/"export default" is not allowed.*named export/);
    }
  });

  it('reports export * as ns without listing ns as a function', () => {
    for (const file of ['a.server.js', 'a.server.ts']) {
      const result = scanExports(`export * as tools from './tools.js';\n`, file);
      expect(result.exports).toEqual([]);
      expect(result.errors).toHaveLength(1);
    }
  });

  it('classifies what each export is, so a build can refuse non-functions', () => {
    const code = `
      export function a() {}
      export const b = () => 1, c = function () {};
      export const d = queryRows('rules', {});
      export const e = 42;
      export const f = { x: 1 };
      export class G {}
      export const h = someIdentifier;
      const i = () => 0; export { i };
      export const j = (async () => 1) as unknown as () => Promise<number>;
    `;
    const kinds = Object.fromEntries(
      scanExports(code, 'a.server.ts', { classify: true }).exports.map((e) => [e.name, e.kind]),
    );
    expect(kinds).toEqual({
      a: 'function',
      b: 'function',
      c: 'function',
      d: 'call',
      e: 'value',
      f: 'value',
      G: 'value',
      h: 'unknown',
      i: 'function',
      j: 'function',
    });
  });

  it("recognises handlers declared with the SDK's query, mutation and action, so they can be bundled for the isolate", () => {
    const code = `
      import { query, mutation as m, action, v } from '@favn/vite-plugin-server-fns/server';
      import * as sdk from '@favn/vite-plugin-server-fns/server';
      import { query as notOurs } from './elsewhere';
      export const a = query({ handler: () => 1 });
      export const b = m({ args: [v.string()], handler: (ctx, s) => s }) satisfies object;
      export const c = sdk.action({ handler: async () => 1 });
      export const d = notOurs({ handler: () => 1 });
      const e = action({ handler: () => 2 }); export { e, e as f };
      export async function g() {}
      export const h = sdk.queryRows('rules');
    `;
    const handlers = Object.fromEntries(
      scanExports(code, 'a.server.ts', { classify: true }).exports.map((e) => [e.name, e.handler ?? null]),
    );
    expect(handlers).toEqual({
      a: 'query',
      b: 'mutation',
      c: 'action',
      d: null,
      e: 'action',
      f: 'action',
      g: null,
      h: null,
    });
  });

  it('gives line and column of each exported name', () => {
    const [exp] = scanExports(`\n\n  export async function getData() {}`, 'a.server.js').exports;
    expect(exp).toMatchObject({ name: 'getData', line: 3, column: 25 });
  });

  it('throws a usage error with file and line on a syntax error', () => {
    for (const file of ['broken.server.js', 'broken.server.ts']) {
      expect(() => scanExports(`export async function ok() {}\nexport const x = (1;\n`, file)).toThrowError(
        expect.objectContaining({
          name: 'UsageError',
          file,
          line: 2,
          message: expect.stringContaining(`Syntax error in ${file}`),
        }),
      );
    }
  });

  it('parses JSX in .tsx and .jsx modules', () => {
    expect(names(`export const Card = () => <div className="x">hi</div>;`, 'a.server.tsx')).toEqual(['Card']);
    expect(names(`export const Card = () => <div>hi</div>;`, 'a.server.jsx')).toEqual(['Card']);
  });

  it('handles string-literal export names and destructured exports', () => {
    expect(names(`const x = () => 1; export { x as "with-dash" };`, 'a.server.ts')).toEqual(['with-dash']);
    expect(names(`export const { a, b: [c] } = make();`, 'a.server.ts')).toEqual(['a', 'c']);
  });
});
