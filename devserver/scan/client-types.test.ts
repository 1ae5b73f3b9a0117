import { existsSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeClientTypes } from './client-types.js';

let root: string;

async function put(file: string, text: string): Promise<void> {
  await mkdir(path.dirname(path.join(root, file)), { recursive: true });
  await writeFile(path.join(root, file), text);
}

const read = (file: string) => readFile(path.join(root, '.favn', 'types', file), 'utf8');

beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'favn-client-types-'));
  await put('tsconfig.json', '{}');
});

afterEach(() => rm(root, { recursive: true, force: true }));

describe('writeClientTypes', () => {
  it('augments each module with the client signature of its exported function declarations', async () => {
    await put(
      'src/a.server.ts',
      [
        "import type { ServerContext } from '@favn/vite-plugin-server-fns/server';",
        "import { helper } from './lib/helper';",
        "import type { Row } from '../shared/types.js';",
        'export async function getData(ctx: ServerContext, id: string) { return helper(id); }',
        'async function local(ctx: ServerContext) { return 1; }',
        'export { local as renamed };',
        "export const listRows = queryRows('rows');",
        'export const arrow = async (ctx: ServerContext) => 1;',
        'export type { Row };',
      ].join('\n'),
    );
    const result = await writeClientTypes(root);
    expect(result.functions).toEqual(['src/a.server.ts#getData', 'src/a.server.ts#renamed']);
    expect(result.warnings).toEqual([expect.stringMatching(/src\/a\.server\.ts: "arrow" is a const function/)]);
    const types = await read('server-fns.d.ts');
    expect(types).toContain('declare module "../../src/a.server" {');
    expect(types).toContain(
      'export function getData(...args: PlainClientArgs<typeof import("./modules/src/a.server").getData>)',
    );
    expect(types).toContain('export function renamed(');
    expect(types).not.toMatch(/listRows|arrow|Register/);
    // The copy resolves the module's own relative imports from its new place.
    const copy = await read('modules/src/a.server.ts');
    expect(copy.startsWith('// @ts-nocheck\n')).toBe(true);
    expect(copy).toContain('from "../../../../src/lib/helper"');
    expect(copy).toContain('from "../../../../shared/types.js"');
    expect(copy).toContain("from '@favn/vite-plugin-server-fns/server'");
  });

  it('registers the schema, writes only on change, and drops copies of removed modules', async () => {
    await put('server/schema.ts', 'export default defineSchema({});');
    await put('src/b.server.tsx', 'export async function b(ctx) { return <div />; }');
    const first = await writeClientTypes(root);
    expect(first.changed).toBe(true);
    const types = await read('server-fns.d.ts');
    expect(types).toMatch(/interface Register {\n\s+schema: typeof import\("\.\.\/\.\.\/server\/schema"\)\.default;/);
    expect((await writeClientTypes(root)).changed).toBe(false);

    await rm(path.join(root, 'src', 'b.server.tsx'));
    const second = await writeClientTypes(root);
    expect(second.changed).toBe(true);
    expect(existsSync(path.join(root, '.favn', 'types', 'modules', 'src'))).toBe(false); // no empty folders
    expect(await read('server-fns.d.ts')).not.toContain('b.server');
  });

  it('leaves a JavaScript project alone, and skips a module that does not parse', async () => {
    await put('src/c.server.ts', 'export async function broken(ctx, {');
    await put('src/d.server.ts', 'export async function fine(ctx) { return 1; }');
    expect((await writeClientTypes(root)).functions).toEqual(['src/d.server.ts#fine']);

    const js = await mkdtemp(path.join(tmpdir(), 'favn-client-types-js-'));
    try {
      await writeFile(path.join(js, 'a.server.js'), 'export async function a(ctx) {}');
      expect((await writeClientTypes(js)).changed).toBe(false);
      expect(existsSync(path.join(js, '.favn'))).toBe(false);
    } finally {
      await rm(js, { recursive: true, force: true });
    }
  });

  it('never writes or removes through a symbolic link, and refuses a linked .favn/types', async () => {
    const outside = await mkdtemp(path.join(tmpdir(), 'favn-client-types-outside-'));
    try {
      await writeFile(path.join(outside, 'keep.txt'), 'precious');
      await put('src/a.server.ts', 'export async function f(ctx: unknown, x: number) { return x; }');
      await mkdir(path.join(root, '.favn', 'types', 'modules', 'src'), { recursive: true });
      await symlink(outside, path.join(root, '.favn', 'types', 'modules', 'elsewhere'));
      await symlink(path.join(outside, 'keep.txt'), path.join(root, '.favn', 'types', 'modules', 'src', 'a.server.ts'));
      await writeClientTypes(root);
      expect(await readFile(path.join(outside, 'keep.txt'), 'utf8')).toBe('precious');
      expect((await lstat(path.join(root, '.favn', 'types', 'modules', 'src', 'a.server.ts'))).isSymbolicLink()).toBe(
        false,
      );
      expect(existsSync(path.join(root, '.favn', 'types', 'modules', 'elsewhere'))).toBe(false);

      await rm(path.join(root, '.favn', 'types'), { recursive: true });
      await symlink(outside, path.join(root, '.favn', 'types'));
      await expect(writeClientTypes(root)).rejects.toThrow(/\.favn\/types is a symbolic link/);
      expect(await readdir(outside)).toEqual(['keep.txt']);
    } finally {
      await rm(outside, { recursive: true, force: true });
    }
  });

  it("quotes odd file names, and one pathological module does not stop the others' types", async () => {
    await put("src/it's.server.ts", 'export async function quoted(ctx: unknown) { return 1; }');
    await put(
      'src/deep.server.ts',
      `export async function deep(ctx: unknown) { const x: any = {}; return x${'.a'.repeat(20000)}; }`,
    );
    await put('src/ok.server.ts', 'export async function ok(ctx: unknown) { return 1; }');
    const result = await writeClientTypes(root);
    expect(result.functions).toEqual(
      expect.arrayContaining(["src/it's.server.ts#quoted", 'src/deep.server.ts#deep', 'src/ok.server.ts#ok']),
    );
    expect(await read('server-fns.d.ts')).toContain(`declare module "../../src/it's.server" {`);
  });
});
