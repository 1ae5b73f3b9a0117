import { mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { scanProject } from './server-modules.js';

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
