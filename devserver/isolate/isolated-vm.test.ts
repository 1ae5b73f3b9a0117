import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../common/usage-error.js';
import { isolatedVm, isolatedVmFix, loadFirst } from './isolated-vm.js';

const require = createRequire(import.meta.url);
const major = Number(process.versions.node.split('.')[0]);

describe('isolated-vm for the running Node', () => {
  it('loads the build made for this Node line and runs code in an isolate', async () => {
    const ivm = isolatedVm();
    expect(ivm).toBe(require(major >= 24 ? 'isolated-vm-7' : 'isolated-vm-6'));
    const isolate = new ivm.Isolate({ memoryLimit: 16 });
    try {
      const context = await isolate.createContext();
      const answer = await isolate.compileScriptSync('6 * 7').run(context, { timeout: 1000 });
      expect(answer).toBe(42);
    } finally {
      isolate.dispose();
    }
  });

  it('falls through builds that do not load to one that does', () => {
    const loaded = loadFirst(['isolated-vm-0', 'isolated-vm-7', 'isolated-vm-6'], require);
    expect(loaded).toBe(isolatedVm());
  });

  it('names the Node version, each failed build and the install command when none loads', () => {
    let error: unknown;
    try {
      loadFirst(['isolated-vm-0', 'node:path'], require);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(UsageError);
    const message = (error as Error).message;
    expect(message).toContain(`no build of it loads on Node ${process.versions.node}`);
    expect(message).toContain('isolated-vm-0: not installed');
    expect(message).toContain('node:path: does not look like isolated-vm');
    expect(message).toContain(`Fix: ${isolatedVmFix(major)}.`);
  });

  it('the fix is a reinstall with this Node; a line-specific build only as an optional last resort', () => {
    expect(isolatedVmFix(22)).toMatch(
      /^run `npm install` \(or `npm ci`\) in the feature repo with this Node, without `--omit=optional`/,
    );
    expect(isolatedVmFix(22)).toMatch(/`npm install --save-optional isolated-vm@6\.2\.0`$/);
    expect(isolatedVmFix(24)).toMatch(/`npm install --save-optional isolated-vm@7\.0\.1`$/);
    expect(isolatedVmFix(26)).toMatch(/`npm install --save-optional isolated-vm@7\.0\.1`$/);
    // An unsupported line: no command that would compile or fail, the lines to use instead.
    expect(isolatedVmFix(20)).toBe('use Node 22, 24, 26 (this is Node 20), then run `npm install` again');
    expect(isolatedVmFix(25)).toBe('use Node 22, 24, 26 (this is Node 25), then run `npm install` again');
  });

  it('a build present but missing a dependency of its own says which, not "not installed"', async () => {
    // A feature repo whose isolated-vm-6 lost its node-gyp-build.
    const repo = await mkdtemp(path.join(tmpdir(), 'favn-ivm-'));
    try {
      const build = path.join(repo, 'node_modules', 'isolated-vm-6');
      await mkdir(build, { recursive: true });
      const source = path.dirname(require.resolve('isolated-vm-6/package.json'));
      for (const file of ['package.json', 'isolated-vm.js'])
        await copyFile(path.join(source, file), path.join(build, file));
      const inRepo = createRequire(path.join(repo, 'index.js'));
      expect(() => loadFirst(['isolated-vm-6'], inRepo)).toThrow("isolated-vm-6: Cannot find module 'node-gyp-build'");
    } finally {
      await rm(repo, { recursive: true, force: true });
    }
  });
});
