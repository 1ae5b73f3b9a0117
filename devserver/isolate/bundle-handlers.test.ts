import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { bundleHandlers, type HandlerModule } from './bundle-handlers.js';

const HANDLERS = `import { query } from '@favn/vite-plugin-server-fns/server';
import { WORD } from './lib/word';
export const word = query({ handler: () => WORD });
export const twice = query({ handler: () => WORD + WORD });
`;

describe('bundleHandlers with the last bundle (a dev server between saves)', () => {
  let root: string;
  let modules: HandlerModule[];
  const word = () => path.join(root, 'lib', 'word.ts');

  beforeEach(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'favn-bundle-'));
    await mkdir(path.join(root, 'lib'));
    await writeFile(path.join(root, 'rules.server.ts'), HANDLERS);
    await writeFile(word(), `export const WORD = 'w1';\n`);
    modules = [{ absolute: path.join(root, 'rules.server.ts'), handlers: [{ name: 'word', kind: 'query' }] }];
  });
  afterEach(() => rm(root, { recursive: true, force: true }));

  it('the same handlers from unchanged files: the last bundle, nothing bundled', async () => {
    const first = await bundleHandlers(root, modules, { previous: null });
    expect(await bundleHandlers(root, modules, { previous: first })).toBe(first);
  });

  it('a file the handlers import changed: a new bundle with its code, which the next save reuses', async () => {
    const first = await bundleHandlers(root, modules, { previous: null });
    await writeFile(word(), `export const WORD = 'w2';\n`);
    const second = await bundleHandlers(root, modules, { previous: first });
    expect(second).not.toBe(first);
    expect(second.code).toContain('w2');
    expect(second.code).not.toContain('w1');
    expect(await bundleHandlers(root, modules, { previous: second })).toBe(second);
  });

  it('other handlers, another kind or other aliases: a new bundle', async () => {
    const first = await bundleHandlers(root, modules, { previous: null });
    const more: HandlerModule[] = [
      { ...modules[0]!, handlers: [...modules[0]!.handlers, { name: 'twice', kind: 'query' }] },
    ];
    const second = await bundleHandlers(root, more, { previous: first });
    expect(second).not.toBe(first);
    expect(second.kinds).toEqual({ word: 'query', twice: 'query' });
    const kind: HandlerModule[] = [{ ...modules[0]!, handlers: [{ name: 'word', kind: 'mutation' }] }];
    expect((await bundleHandlers(root, kind, { previous: second })).kinds).toEqual({ word: 'mutation' });
    const alias = [{ find: '@lib', replacement: path.join(root, 'lib') }];
    expect(await bundleHandlers(root, modules, { previous: first, alias })).not.toBe(first);
  });

  it('files written again with the same text (a touch, a checkout of the same commit): the same bundle', async () => {
    const first = await bundleHandlers(root, modules, { previous: null });
    await writeFile(word(), `export const WORD = 'w1';\n`);
    await writeFile(path.join(root, 'rules.server.ts'), HANDLERS);
    expect(await bundleHandlers(root, modules, { previous: first })).toBe(first);
  });

  it('a build (no last bundle given) records nothing to reuse; a dev server given it bundles anew', async () => {
    const built = await bundleHandlers(root, modules);
    expect(built.sources).toBeUndefined();
    await writeFile(word(), `export const WORD = 'w2';\n`);
    const next = await bundleHandlers(root, modules, { previous: built });
    expect(next).not.toBe(built);
    expect(next.code).toContain('w2');
  });

  it('a file of the graph deleted: bundled again, and the missing import is the error', async () => {
    const first = await bundleHandlers(root, modules, { previous: null });
    await rm(word());
    await expect(bundleHandlers(root, modules, { previous: first })).rejects.toThrow(/word/);
  });
});
