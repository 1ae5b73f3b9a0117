import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openPglite } from './pglite-client.js';
import { seedFromTemplate, templateDir } from './pglite-template.js';

const scratch = mkdtempSync(path.join(os.tmpdir(), 'favn-template-'));
const env = { FAVN_CACHE_DIR: path.join(scratch, 'cache') };
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('a new dev database starts as a copy of the initialized template', () => {
  it('makes the template once, and seeds a new folder that PGlite then opens with its data intact', async () => {
    const first = path.join(scratch, 'one', '.favn', 'db');
    expect(await seedFromTemplate(first, env)).toBe(true);
    const made = path.join(templateDir(env), 'datadir');
    expect(readdirSync(made)).toContain('favn-template-ready');
    expect(existsSync(path.join(first, 'PG_VERSION'))).toBe(true);
    expect(readdirSync(first)).not.toContain('favn-template-ready');
    const db = await openPglite(first);
    await db.adminTransaction(async (q) => {
      await q('CREATE TABLE kept (n int)');
      await q('INSERT INTO kept VALUES (42)');
    });
    await db.close();
    const again = await openPglite(first);
    expect(await again.adminTransaction((q) => q('SELECT n FROM kept'))).toEqual([{ n: 42 }]);
    await again.close();
    // Another new folder gets the template, not the first database's table.
    const second = path.join(scratch, 'two', '.favn', 'db');
    expect(await seedFromTemplate(second, env)).toBe(true);
    const fresh = await openPglite(second);
    expect(await fresh.adminTransaction((q) => q("SELECT to_regclass('kept') AS t"))).toEqual([{ t: null }]);
    await fresh.close();
  });

  it('leaves a folder that holds anything alone, and never uses a template whose making was cut short', async () => {
    const existing = path.join(scratch, 'three');
    mkdirSync(existing, { recursive: true });
    writeFileSync(path.join(existing, 'something'), 'x');
    expect(await seedFromTemplate(existing, env)).toBe(false);
    expect(readdirSync(existing)).toEqual(['something']);

    const halfEnv = { FAVN_CACHE_DIR: path.join(scratch, 'half') };
    const half = path.join(templateDir(halfEnv), 'datadir');
    mkdirSync(half, { recursive: true });
    writeFileSync(path.join(half, 'PG_VERSION'), 'not a cluster');
    const target = path.join(scratch, 'four');
    expect(await seedFromTemplate(target, halfEnv)).toBe(true);
    // The unfinished folder was not copied: the seeded one opens as a real database.
    const db = await openPglite(target);
    expect(await db.adminTransaction((q) => q('SELECT 1 AS one'))).toEqual([{ one: 1 }]);
    await db.close();
  });

  it('falls back to PGlite making the folder itself when the cache cannot be written', async () => {
    const blocked = path.join(scratch, 'blocked');
    writeFileSync(blocked, 'a file where the cache folder would be');
    const target = path.join(scratch, 'five');
    expect(await seedFromTemplate(target, { FAVN_CACHE_DIR: blocked })).toBe(false);
  });
});

describe('a dev database folder starts with less shared memory', () => {
  it('opens with shared_buffers 16MB, and an operator ALTER SYSTEM SET still wins', async () => {
    const dir = path.join(scratch, 'tuned', '.favn', 'db');
    await seedFromTemplate(dir, env);
    const setting = async () => {
      const db = await openPglite(dir);
      try {
        return (await db.adminTransaction((q) => q("SELECT current_setting('shared_buffers') AS v")))[0]?.v;
      } finally {
        await db.close();
      }
    };
    expect(await setting()).toBe('16MB');
    const db = await openPglite(dir);
    await db.pglite.exec("ALTER SYSTEM SET shared_buffers = '32MB'");
    await db.close();
    expect(await setting()).toBe('32MB');
    // Opening again does not add the setting twice.
    expect(readFileSync(path.join(dir, 'postgresql.conf'), 'utf8').split('shared_buffers = 16MB').length).toBe(2);
  });
});
