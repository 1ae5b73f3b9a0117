import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { hostedFeature, type HostedFeature } from './feature.js';
import { readManifest } from './manifest.js';
import { ModuleExecutor } from './module-executor.js';

/**
 * Loads a built feature from its `dist-server/` folder: the runtime manifest and the server
 * bundle it names. A bundle whose bytes do not match `serverFunctionsSha256` stays unloaded.
 *
 * @example
 * const feature = await loadBuiltFeature('my-feature/dist-server')
 */
export async function loadBuiltFeature(dir: string, options: { secrets?: Record<string, string>; warn?: (m: string) => void } = {}): Promise<HostedFeature> {
  const manifestFile = path.join(dir, 'feature.json');
  const manifest = readManifest(manifestFile, { runtime: true, warn: options.warn });
  const sf = manifest.serverFunctions;
  if (!sf?.module) return hostedFeature(manifest, null, options.secrets);

  const moduleFile = path.resolve(dir, sf.module);
  const bytes = await readFile(moduleFile);
  const executor = new ModuleExecutor(() => [
    { file: sf.module as string, exportNames: sf.exports, load: () => import(pathToFileURL(moduleFile).href) },
  ]);
  const feature = hostedFeature(manifest, executor, options.secrets);
  const digest = createHash('sha256').update(bytes).digest('hex');
  if (sf.serverFunctionsSha256 && sf.serverFunctionsSha256 !== digest) {
    feature.unavailableReason = `${sf.module} does not match serverFunctionsSha256 of ${manifestFile} (expected ${sf.serverFunctionsSha256}, got ${digest})`;
    return feature;
  }
  await executor.reload();
  return feature;
}
