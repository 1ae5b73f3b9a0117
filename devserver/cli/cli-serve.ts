import { parseAllowedHosts, type AllowedHosts } from '../serve/allowed-hosts.js';
import { SECRET_ENV_PREFIX } from '../serve/feature-secrets.js';
import { readServeConfig } from '../serve/serve-config.js';
import { startServe } from '../serve/serve.js';
import { UsageError } from '../common/usage-error.js';
import { batchedLines } from '../host/call-log.js';
import { nodeSnapshotWarning } from '../executors/isolate-executor.js';

/** Shortest admin token accepted from any source: it guards a login form open to the network. */
const MIN_ADMIN_TOKEN = 16;

export interface ServeCliOptions {
  dirs: string[];
  config?: string;
  port: number;
  host: string;
  strictPort: boolean;
  /** `--allowed-hosts` values, each a comma-separated list; `true` allows any host. */
  allowedHosts?: string[];
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
  config.allowedHosts = mergeAllowedHosts(config.allowedHosts ?? [], options.allowedHosts ?? []);
  const env = takeSecretsFromEnvironment();
  const adminToken = config.adminToken || env.FAVN_ADMIN_TOKEN;
  if (adminToken && adminToken.length < MIN_ADMIN_TOKEN) {
    const where = '--admin-token or FAVN_ADMIN_TOKEN';
    throw new UsageError(`The admin token (${where}) must have at least ${MIN_ADMIN_TOKEN} characters`);
  }
  if (config.features.length === 0) {
    process.stderr.write(
      'favn serve: no features. Name built feature folders (favn serve ./my-feature) or list them in --config.\n',
    );
    return 2;
  }
  const running = await startServe(config, {
    port: options.port,
    host: options.host,
    strictPort: options.strictPort,
    dev: options.dev,
    env,
    logCall: batchedLines((text) => process.stdout.write(text)),
    logError: (message, error) =>
      process.stderr.write(`${message}\n${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`),
    warn: (message) => process.stderr.write(`${message}\n`),
    info: (message) => process.stdout.write(`${message}\n`),
  });
  process.stdout.write(`favn serve: ${running.url}/\n`);
  // Started with plain `node` (a container's CMD), not the favn binary that sets the flag itself.
  const snapshot = nodeSnapshotWarning();
  if (snapshot && running.features.some(({ feature }) => feature.manifest.serverFunctions?.handlers)) {
    process.stderr.write(`${snapshot}\n`);
  }
  for (const { feature, staticDir } of running.features) {
    const mode = feature.functions?.mode ?? 'none';
    const state = feature.unavailableReason
      ? `UNAVAILABLE: ${feature.unavailableReason}`
      : `${mode}, ${feature.declared.size} functions${feature.handlersError?.() ? ' (handlers unavailable, see above)' : ''}`;
    process.stdout.write(
      `  ${feature.id}${feature.manifest.version ? `@${feature.manifest.version}` : ''}  ${state}${staticDir ? `  page ${running.url}/${feature.id}/` : ''}\n`,
    );
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

function mergeAllowedHosts(fromConfig: AllowedHosts, flags: readonly string[]): AllowedHosts {
  const entries = flags
    .flatMap((flag) => flag.split(','))
    .map((entry) => entry.trim())
    .filter(Boolean);
  if (fromConfig === true || entries.includes('true')) return true;
  return [...fromConfig, ...(parseAllowedHosts(entries, '--allowed-hosts') as string[])];
}

/**
 * The environment as read at start; the secrets (`FAVN_SECRET_*`, the admin token) are then
 * removed from `process.env`, so plain functions and child processes do not find them there.
 */
function takeSecretsFromEnvironment(): Record<string, string | undefined> {
  const env = { ...process.env };
  for (const name of Object.keys(process.env)) {
    if (name.startsWith(SECRET_ENV_PREFIX) || name === 'FAVN_ADMIN_TOKEN') delete process.env[name];
  }
  return env;
}
