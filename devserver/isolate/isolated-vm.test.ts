import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../common/usage-error.js';
import { isolatedVm, isolatedVmInstallCommand, loadFirst } from './isolated-vm.js';

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
    expect(message).toContain(`run \`${isolatedVmInstallCommand(major)}\` in the feature repo`);
  });

  it('the install command is the release with a prebuilt binary for each supported line', () => {
    expect(isolatedVmInstallCommand(22)).toBe('npm install isolated-vm@6.2.0');
    expect(isolatedVmInstallCommand(24)).toBe('npm install isolated-vm@7.0.1');
    expect(isolatedVmInstallCommand(26)).toBe('npm install isolated-vm@7.0.1');
    expect(isolatedVmInstallCommand(20)).toMatch(/^npm install isolated-vm@5\.0\.4 \(compiles/);
  });
});
