import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { bundleHandlers, type HandlerModule } from './bundle-handlers.js';

const PATHS_HANDLERS = `import { query } from '@favn/vite-plugin-server-fns/server';
import { WORD } from '@lib/word';
export const word = query({ handler: () => WORD });
`;

describe('handler bundle reuse with tsconfig files as people write them', () => {
  let root: string;
  let modules: HandlerModule[];
  const write = async (file: string, value: unknown) => {
    await mkdir(path.dirname(path.join(root, file)), { recursive: true });
    await writeFile(path.join(root, file), typeof value === 'string' ? value : JSON.stringify(value, null, 2));
  };
  const which = (code: string) => (code.includes('from-a') ? 'a' : code.includes('from-b') ? 'b' : 'none');

  beforeEach(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'favn-bundle-tsconfig-'));
    await write('a/word.ts', `export const WORD = 'from-a';\n`);
    await write('b/word.ts', `export const WORD = 'from-b';\n`);
    await write('server/rules.server.ts', PATHS_HANDLERS);
    modules = [{ absolute: path.join(root, 'server', 'rules.server.ts'), handlers: [{ name: 'word', kind: 'query' }] }];
  });
  afterEach(() => rm(root, { recursive: true, force: true }));

  /** True when bundling again with nothing changed returns the last bundle. */
  async function reused(): Promise<boolean> {
    const first = await bundleHandlers(root, modules, { previous: null });
    expect(which(first.code)).toBe('a');
    const second = await bundleHandlers(root, modules, { previous: first });
    return second === first;
  }

  async function afterEdit(edit: () => Promise<void>): Promise<[string, string, string]> {
    const first = await bundleHandlers(root, modules, { previous: null });
    await edit();
    const fresh = await bundleHandlers(root, modules);
    const dev = await bundleHandlers(root, modules, { previous: first });
    return [which(first.code), which(fresh.code), which(dev.code)];
  }

  it('control: a plain tsconfig.json is reused', async () => {
    await write('tsconfig.json', { compilerOptions: { paths: { '@lib/*': ['./a/*'] } } });
    expect(await reused()).toBe(true);
  });

  it('a trailing comma followed by a comment: the bundle is still reused', async () => {
    await write(
      'tsconfig.json',
      `{\n  "compilerOptions": {\n    "paths": { "@lib/*": ["./a/*"] },\n    "strict": true, // keep on\n  },\n}\n`,
    );
    expect(await reused()).toBe(true);
  });

  it('a tsconfig.json saved with a byte order mark: the bundle is still reused', async () => {
    await write('tsconfig.json', `\uFEFF${JSON.stringify({ compilerOptions: { paths: { '@lib/*': ['./a/*'] } } })}`);
    expect(await reused()).toBe(true);
  });

  it('strings with //, /* and escaped quotes before "extends": an edit of the extended file bundles anew', async () => {
    const base = (dir: string) => ({ compilerOptions: { baseUrl: '..', paths: { '@lib/*': [`./${dir}/*`] } } });
    await write(
      'tsconfig.json',
      `{\n  "compilerOptions": { "outDir": "http://x/*y\\"//z" },\n  /* "extends": "./config/old.json" */\n  "extends": "./config/base.json",\n}\n`,
    );
    await write('config/base.json', base('a'));
    const [first, fresh, dev] = await afterEdit(() => write('config/base.json', base('b')));
    expect([first, fresh]).toEqual(['a', 'b']);
    expect(dev).toBe(fresh);
  });

  const server = (dir: string) => ({
    compilerOptions: { composite: true, baseUrl: '..', paths: { '@lib/*': [`./${dir}/*`] } },
    include: ['../server/**/*'],
  });

  it('a referenced tsconfig in another folder: an edit of its paths bundles anew', async () => {
    await write('tsconfig.json', { files: [], references: [{ path: './config/tsconfig.server.json' }] });
    await write('config/tsconfig.server.json', server('a'));
    const [first, fresh, dev] = await afterEdit(() => write('config/tsconfig.server.json', server('b')));
    expect([first, fresh]).toEqual(['a', 'b']);
    expect(dev).toBe(fresh);
  });

  it('a referenced folder (its tsconfig.json): an edit of its paths bundles anew', async () => {
    await write('tsconfig.json', { files: [], references: [{ path: './config' }] });
    await write('config/tsconfig.json', server('a'));
    const [first, fresh, dev] = await afterEdit(() => write('config/tsconfig.json', server('b')));
    expect([first, fresh]).toEqual(['a', 'b']);
    expect(dev).toBe(fresh);
  });

  it('an "extends" after a commented-out one: an edit of the extended file bundles anew', async () => {
    const base = (dir: string) => ({ compilerOptions: { baseUrl: '..', paths: { '@lib/*': [`./${dir}/*`] } } });
    await write('tsconfig.json', `{\n  // "extends": "./config/old.json",\n  "extends": "./config/base.json"\n}\n`);
    await write('config/base.json', base('a'));
    const [first, fresh, dev] = await afterEdit(() => write('config/base.json', base('b')));
    expect([first, fresh]).toEqual(['a', 'b']);
    expect(dev).toBe(fresh);
  });
});
