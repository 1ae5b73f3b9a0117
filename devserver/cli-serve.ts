import { readServeConfig } from './serve/serve-config.js';
import { startServe } from './serve/serve.js';

export interface ServeCliOptions {
  dirs: string[];
  config?: string;
  port: number;
  host: string;
  strictPort: boolean;
  adminToken?: string;
  dev: boolean;
}

/**
 * `favn serve`: the standalone host over built features until SIGINT/SIGTERM, then a graceful
 * shutdown (calls in flight finish, new ones get 503). Resolves with the exit code.
 */
export async function runServe(options: ServeCliOptions): Promise<number> {
  const config = readServeConfig(options.config, options.dirs);
  if (options.adminToken) config.adminToken = options.adminToken;
  if (config.features.length === 0) {
    process.stderr.write('favn serve: no features. Name built feature folders (favn serve ./my-feature) or list them in --config.\n');
    return 2;
  }
  const running = await startServe(config, {
    port: options.port,
    host: options.host,
    strictPort: options.strictPort,
    dev: options.dev,
    logCall: (line) => process.stdout.write(`${line}\n`),
    logError: (message, error) => process.stderr.write(`${message}\n${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`),
    warn: (message) => process.stderr.write(`${message}\n`),
  });
  process.stdout.write(`favn serve: ${running.url}/\n`);
  for (const { feature, staticDir } of running.features) {
    const mode = feature.executor?.mode ?? 'none';
    const state = feature.unavailableReason ? `UNAVAILABLE: ${feature.unavailableReason}` : `${mode}, ${feature.declared.size} functions`;
    process.stdout.write(`  ${feature.id}${feature.manifest.version ? `@${feature.manifest.version}` : ''}  ${state}${staticDir ? `  page ${running.url}/${feature.id}/` : ''}\n`);
  }
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      process.stdout.write(`favn serve: ${signal}, finishing calls in flight\n`);
      resolve();
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  await running.close();
  process.stdout.write('favn serve: stopped\n');
  return 0;
}
