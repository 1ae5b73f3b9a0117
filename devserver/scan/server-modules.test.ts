import { mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { scanProject, type ScanCache } from './server-modules.js';

describe('scanProject during a save', () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'favn-scan-'));
  });
  afterEach(() => rm(root, { recursive: true, force: true }));

  it('a module caught between the truncate and the write keeps its exports when the scan settles', async () => {
    const file = path.join(root, 'rules.server.ts');
    const source = 'export async function addRule() {}\nexport async function listRules() {}\n';
    await writeFile(file, source);
    await truncate(file);
    const writing = new Promise((resolve) => setTimeout(resolve, 40)).then(() => writeFile(file, source));
    const scan = await scanProject(root, { settle: true });
    await writing;
    expect(scan.modules.map((m) => m.exports.map((e) => e.name))).toEqual([['addRule', 'listRules']]);
  });

  it('without settling, the same moment reads as a module without exports', async () => {
    const file = path.join(root, 'rules.server.ts');
    await writeFile(file, '');
    const scan = await scanProject(root);
    expect(scan.modules.map((m) => m.exports)).toEqual([[]]);
  });

  it('a module that is really empty is scanned as empty after the wait', async () => {
    await writeFile(path.join(root, 'empty.server.ts'), '');
    const scan = await scanProject(root, { settle: true });
    expect(scan).toMatchObject({ modules: [{ file: 'empty.server.ts', exports: [], parsed: true }], errors: [] });
  });
});

describe('scanProject with a cache (a dev server between saves)', () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'favn-scan-cache-'));
  });
  afterEach(() => rm(root, { recursive: true, force: true }));

  const names = (scan: Awaited<ReturnType<typeof scanProject>>) =>
    Object.fromEntries(
      scan.modules.map((m) => [m.file, m.exports.map((e) => `${e.name}:${e.kind}:${e.handler ?? 'plain'}`)]),
    );

  it('finds what a scan without it finds, after every kind of change', async () => {
    const cache: ScanCache = new Map();
    const a = path.join(root, 'a.server.ts');
    const b = path.join(root, 'b.server.ts');
    await writeFile(a, 'export async function one() {}\n');
    await writeFile(
      b,
      "import { query } from '@favn/vite-plugin-server-fns/server';\nexport const q = query({ handler: () => 1 });\n",
    );
    const steps: (() => Promise<void>)[] = [
      async () => {},
      // The same text again, then a change of kind with the same name, then a syntax error.
      () => writeFile(a, 'export async function one() {}\n'),
      () =>
        writeFile(
          b,
          "import { mutation } from '@favn/vite-plugin-server-fns/server';\nexport const q = mutation({ handler: () => 1 });\n",
        ),
      () => writeFile(a, 'export async function one( {}\n'),
      () => writeFile(a, 'export async function one() {}\nexport const two = 2;\n'),
      () => rm(b),
      () => writeFile(b, 'export async function back() {}\n'),
    ];
    for (const step of steps) {
      await step();
      const cached = await scanProject(root, { classify: true, cache });
      const fresh = await scanProject(root, { classify: true });
      expect(names(cached)).toEqual(names(fresh));
      expect(cached.errors.map((e) => e.message)).toEqual(fresh.errors.map((e) => e.message));
      expect(cached.modules.map((m) => m.parsed)).toEqual(fresh.modules.map((m) => m.parsed));
    }
    // Only the files that exist are remembered.
    expect([...cache.keys()].sort()).toEqual([a, b]);
  });

  it('a scan that classifies does not reuse what a scan without classifying found', async () => {
    const cache: ScanCache = new Map();
    await writeFile(
      path.join(root, 'h.server.js'),
      "import { query } from '@favn/vite-plugin-server-fns/server';\nexport const q = query({ handler: () => 1 });\n",
    );
    const plain = await scanProject(root, { cache });
    const classified = await scanProject(root, { classify: true, cache });
    expect(names(classified)).toEqual(names(await scanProject(root, { classify: true })));
    expect(names(plain)).toEqual(names(await scanProject(root)));
  });
});
