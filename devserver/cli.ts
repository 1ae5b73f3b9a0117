#!/usr/bin/env -S MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=131072 node --no-node-snapshot
import { parseArgs } from 'node:util';
import { runCheck } from './cli/cli-check.js';
import { runDb } from './cli/cli-db.js';
import { runServe } from './cli/cli-serve.js';
import { DEFAULT_SCHEMA_FILE } from './feature/schema-loader.js';

const HELP = `favn: server functions for Vite feature repos

Usage:
  favn check [--fix] [--root <dir>] [--manifest <file>]
      Compare the exports of all *.server.* modules with serverFunctions.exports of feature.json.
      Exits 1 on a mismatch (for CI). --fix rewrites serverFunctions.exports to match.
  favn db [tables|migrate|reset|shell] [--root <dir>] [--schema <file>]
      tables    list the feature's tables, their columns and row counts (default)
      migrate   apply server/schema.ts; --allow-destructive also drops/retypes columns and tables
      reset     drop the feature's tables and data and re-create them (needs --yes)
      shell     serve the PGlite dev database on --port (default 5433) for psql
      Uses PGlite in .favn/db, or DATABASE_URL (environment or .env.local).
  favn serve [feature-dir...] [--config favn.config.json] [--port 3000] [--host [addr]] [--strictPort]
             [--allowed-hosts <name,.domain|true>] [--admin-token <token>] [--dev]
      Serve built features (after vite build: dist/ at /<featureId>/, dist-server/ for /rpc) and the
      features of the config (endpoint manifests, releases.json). --host alone listens on all
      addresses. SIGINT/SIGTERM: calls in flight finish, then it exits. Tables use DATABASE_URL, or
      PGlite in .favn/db of the current folder.
      Requests whose Host is not localhost, an IP address, the --host name, publicHost or an
      --allowed-hosts entry get 403 (".example.com" allows subdomains, true allows any host).
      /_admin needs --admin-token (or FAVN_ADMIN_TOKEN, 16+ characters): a login form in a browser,
      or "Authorization: Bearer <token>". Secrets: FAVN_SECRET_<FEATURE_ID>__<NAME> variables and
      the "secrets" env files of the config.
  favn --help
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(HELP);
    return command ? 0 : 2;
  }
  if (command === 'check') {
    const { values } = parseArgs({
      args: rest,
      options: {
        fix: { type: 'boolean', default: false },
        root: { type: 'string', default: '.' },
        manifest: { type: 'string', default: 'feature.json' },
      },
      strict: true,
    });
    return runCheck({ root: values.root, manifest: values.manifest, fix: values.fix });
  }
  if (command === 'db') {
    const { values, positionals } = parseArgs({
      args: rest,
      allowPositionals: true,
      options: {
        root: { type: 'string', default: '.' },
        manifest: { type: 'string', default: 'feature.json' },
        schema: { type: 'string', default: DEFAULT_SCHEMA_FILE },
        'allow-destructive': { type: 'boolean', default: false },
        yes: { type: 'boolean', default: false },
        port: { type: 'string', default: '5433' },
      },
      strict: true,
    });
    return runDb(positionals[0] ?? 'tables', {
      root: values.root,
      manifest: values.manifest,
      schema: values.schema,
      allowDestructive: values['allow-destructive'],
      yes: values.yes,
      port: Number(values.port),
    });
  }
  if (command === 'serve') {
    // Like Vite: `--host` alone means every address.
    const args = rest.flatMap((arg, i) =>
      arg === '--host' && (rest[i + 1] === undefined || rest[i + 1]!.startsWith('-')) ? ['--host=0.0.0.0'] : [arg],
    );
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        config: { type: 'string' },
        port: { type: 'string', default: '3000' },
        host: { type: 'string', default: 'localhost' },
        strictPort: { type: 'boolean', default: false },
        'allowed-hosts': { type: 'string', multiple: true },
        'admin-token': { type: 'string' },
        dev: { type: 'boolean', default: false },
      },
      strict: true,
    });
    const port = Number(values.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535)
      throw new Error(`--port must be a port number (got ${values.port})`);
    return runServe({
      dirs: positionals,
      config: values.config,
      port,
      host: values.host,
      strictPort: values.strictPort,
      allowedHosts: values['allowed-hosts'],
      adminToken: values['admin-token'],
      dev: values.dev,
    });
  }
  process.stderr.write(`favn: unknown command "${command}"\n\n${HELP}`);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => (process.exitCode = code),
  (error: unknown) => {
    process.stderr.write(`favn: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 2;
  },
);
