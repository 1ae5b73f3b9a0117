import { mkdir, mkdtemp, readdir, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import vm from 'node:vm';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { bundleHandlers, type HandlerBundle, type HandlerModule } from './bundle-handlers.js';

const SDK = `import { query } from '@favn/vite-plugin-server-fns/server';`;

/** What the handler `word` of a bundle answers, run in a fresh context as the isolate runs it. */
function wordOf(bundle: HandlerBundle): unknown {
  const context = vm.createContext({});
  vm.runInContext(bundle.code, context);
  return (context as { __favn_handlers: { word: { handler: () => unknown } } }).__favn_handlers.word.handler();
}

// The last bundle must come back only when bundling again would give the same code: each case
// changes what the handlers would bundle to in a way a dev server meets, then bundles again.
describe('bundleHandlers with the last bundle, after changes a dev server meets', () => {
  let root: string;
  let modules: HandlerModule[];
  const at = (...parts: string[]) => path.join(root, ...parts);
  const hourAgo = () => new Date(Date.now() - 3_600_000);

  /** Sets every file of the project an hour back, as files nobody is saving. */
  async function settle(): Promise<void> {
    const time = hourAgo();
    for (const file of await readdir(root, { recursive: true, withFileTypes: true }))
      if (file.isFile()) await utimes(path.join(file.parentPath, file.name), time, time);
  }

  /** Writes `text` and gives the file back the size-and-time stamp it had (`touch -r`, `cp -p`). */
  async function rewriteKeepingTimes(file: string, text: string): Promise<void> {
    const before = await stat(file);
    await writeFile(file, text);
    expect((await stat(file)).size).toBe(before.size);
    await utimes(file, before.atime, before.mtime);
  }

  /** The handler module, importing `WORD` from `source`. */
  async function handlersFrom(source: string): Promise<void> {
    await writeFile(
      at('rules.server.ts'),
      `${SDK}\nimport { WORD } from '${source}';\nexport const word = query({ handler: () => WORD });\n`,
    );
    modules = [{ absolute: at('rules.server.ts'), handlers: [{ name: 'word', kind: 'query' }] }];
  }

  beforeEach(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'favn-bundle-attack-'));
    await mkdir(at('lib'));
    await writeFile(at('lib', 'word.ts'), `export const WORD = 'wa';\n`);
    await writeFile(at('lib', 'other.ts'), `export const WORD = 'wb';\n`);
    await handlersFrom('./lib/word');
  });
  afterEach(() => rm(root, { recursive: true, force: true }));

  it('a file of the graph rewritten with the same size and its old times restored is bundled anew', async () => {
    await settle();
    const first = await bundleHandlers(root, modules, { previous: null });
    expect(wordOf(first)).toBe('wa');
    // `cp -p`, `rsync -t`, `tar x` or `touch -r` after an edit: the watcher reports the change.
    await rewriteKeepingTimes(at('lib', 'word.ts'), `export const WORD = 'wz';\n`);
    expect(wordOf(await bundleHandlers(root, modules, { previous: first }))).toBe('wz');
  });

  it('two saves of the same size within one tick of a coarse file clock: the second is bundled', async () => {
    // File systems that keep times in whole seconds or two (HFS+, ext3, FAT, some network and
    // container mounts) give both saves one time; here they are given it by hand.
    await settle();
    const first = await bundleHandlers(root, modules, { previous: null });
    const tick = new Date(Math.floor(Date.now() / 2000) * 2000);
    await writeFile(at('lib', 'word.ts'), `export const WORD = 'w2';\n`);
    await utimes(at('lib', 'word.ts'), tick, tick);
    const second = await bundleHandlers(root, modules, { previous: first });
    expect(wordOf(second)).toBe('w2');
    await writeFile(at('lib', 'word.ts'), `export const WORD = 'w3';\n`);
    await utimes(at('lib', 'word.ts'), tick, tick);
    expect(wordOf(await bundleHandlers(root, modules, { previous: second }))).toBe('w3');
  });

  it('tsconfig.json "paths" pointed elsewhere: the import resolves to the new target', async () => {
    await handlersFrom('@word');
    const paths = (target: string) => JSON.stringify({ compilerOptions: { paths: { '@word': [target] } } });
    await writeFile(at('tsconfig.json'), paths('./lib/word.ts'));
    await settle();
    const first = await bundleHandlers(root, modules, { previous: null });
    expect(wordOf(first)).toBe('wa');
    await writeFile(at('tsconfig.json'), paths('./lib/other.ts'));
    expect(wordOf(await bundleHandlers(root, modules, { previous: first }))).toBe('wb');
  });

  it('"paths" of a tsconfig that tsconfig.json extends, two levels down, pointed elsewhere: the new target', async () => {
    await handlersFrom('@word');
    const paths = (target: string) => JSON.stringify({ compilerOptions: { paths: { '@word': [target] } } });
    await mkdir(at('config'));
    // Comments and trailing commas, as tsconfig files are written.
    await writeFile(at('tsconfig.json'), `{\n  // shared settings\n  "extends": "./config/tsconfig.shared.json",\n}\n`);
    await writeFile(at('config', 'tsconfig.shared.json'), JSON.stringify({ extends: ['./tsconfig.base'] }));
    await writeFile(at('config', 'tsconfig.base.json'), paths('../lib/word.ts'));
    await settle();
    const first = await bundleHandlers(root, modules, { previous: null });
    expect(wordOf(first)).toBe('wa');
    await writeFile(at('config', 'tsconfig.base.json'), paths('../lib/other.ts'));
    expect(wordOf(await bundleHandlers(root, modules, { previous: first }))).toBe('wb');
  });

  it('package.json "imports" pointed elsewhere: the import resolves to the new target', async () => {
    await handlersFrom('#word');
    const imports = (target: string) => JSON.stringify({ name: 'app', type: 'module', imports: { '#word': target } });
    await writeFile(at('package.json'), imports('./lib/word.ts'));
    await settle();
    const first = await bundleHandlers(root, modules, { previous: null });
    expect(wordOf(first)).toBe('wa');
    await writeFile(at('package.json'), imports('./lib/other.ts'));
    expect(wordOf(await bundleHandlers(root, modules, { previous: first }))).toBe('wb');
  });

  it('a dependency under node_modules reinstalled with other code: a new bundle with it', async () => {
    await handlersFrom('dep');
    const dep = at('node_modules', 'dep');
    await mkdir(dep, { recursive: true });
    await writeFile(path.join(dep, 'package.json'), JSON.stringify({ name: 'dep', type: 'module', main: 'index.js' }));
    await writeFile(path.join(dep, 'index.js'), `export const WORD = 'd1';\n`);
    await settle();
    const first = await bundleHandlers(root, modules, { previous: null });
    expect(wordOf(first)).toBe('d1');
    expect(await bundleHandlers(root, modules, { previous: first })).toBe(first);
    // A package manager writes the new version's files now (npm does not keep the tarball's times).
    await writeFile(path.join(dep, 'index.js'), `export const WORD = 'd2';\n`);
    expect(wordOf(await bundleHandlers(root, modules, { previous: first }))).toBe('d2');
  });

  it('a symlinked file whose target is edited: a new bundle with the target’s new text', async () => {
    await mkdir(at('shared'));
    await writeFile(at('shared', 'word.ts'), `export const WORD = 's1';\n`);
    await rm(at('lib', 'word.ts'));
    await symlink(at('shared', 'word.ts'), at('lib', 'word.ts'));
    await settle();
    const first = await bundleHandlers(root, modules, { previous: null });
    expect(wordOf(first)).toBe('s1');
    await writeFile(at('shared', 'word.ts'), `export const WORD = 's22';\n`);
    expect(wordOf(await bundleHandlers(root, modules, { previous: first }))).toBe('s22');
  });
});
