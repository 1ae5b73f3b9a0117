#!/usr/bin/env -S MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=131072 node --no-node-snapshot
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { runCheck } from './cli/cli-check.js';
import { runDb } from './cli/cli-db.js';
import { runRelease, runReleaseKeygen } from './cli/cli-release.js';
import { runServe } from './cli/cli-serve.js';
import { runTypes } from './cli/cli-types.js';
import { DEFAULT_SCHEMA_FILE } from './feature/schema-loader.js';

const HELP = `favn: server functions for Vite feature repos

Usage:
  favn check [--fix]       compare server-module exports with serverFunctions.exports of feature.json
  favn db [tables|migrate|reset|shell]
                           the feature's dev database: list, migrate, reset, open for psql
  favn release [--activate [version]]
                           publish the built feature as a signed release, or switch the active one
  favn serve [feature-dir...]
                           serve built features (the standalone host)
  favn types               write .favn/types (client signatures of server functions, for tsc)
  favn help <command>      the options of a command (also: favn <command> --help)
  favn -v, --version       print the version of favn
  favn -h, --help          show this help
`;

const ROOT_OPTIONS_HELP = `  --root <dir>        the feature's folder (default: the current folder)
  --manifest <file>   the feature manifest, relative to --root (default: feature.json)`;

const DB_OPTIONS_HELP = `${ROOT_OPTIONS_HELP}
  --schema <file>     the tables, relative to --root (default: ${DEFAULT_SCHEMA_FILE})`;

const DB_WHERE_HELP = `The database is PGlite in .favn/db, or DATABASE_URL (environment or .env.local). While vite
runs, the commands go through the dev server, which serves .favn/db over the PostgreSQL protocol.`;

/** Help of each command, by the words that name it. */
const COMMAND_HELP: Record<string, string> = {
  check: `Usage: favn check [--fix] [--root <dir>] [--manifest <file>]

Compares the exports of all *.server.* modules with serverFunctions.exports of feature.json.
Exits 0 when they match, 1 on a mismatch or a module problem (for CI).

Options:
  --fix               rewrite serverFunctions.exports to match the modules: the listed order is
                      kept, names no module exports are dropped, new ones are added at the end
${ROOT_OPTIONS_HELP}
  -h, --help          show this help
`,
  db: `Usage: favn db [tables|migrate|reset|shell] [options]

Commands:
  tables    list the feature's tables, their columns and row counts (the default)
  migrate   apply ${DEFAULT_SCHEMA_FILE}; --allow-destructive also drops and retypes columns and tables
  reset     drop the feature's tables and data and re-create them empty (needs --yes)
  shell     print the psql URL of the running dev server, or serve .favn/db on --port (default 5433)

${DB_WHERE_HELP}

Options:
${DB_OPTIONS_HELP}
  -h, --help          show this help (favn db <command> --help: that command's)
`,
  types: `Usage: favn types [--root <dir>] [--schema <file>]

Writes .favn/types/: the client's signature of every exported plain function and the schema's
types, for tsc and editors (include ".favn/types" in tsconfig.app.json). vite and vite build write
it on start; run this before tsc in a fresh checkout: "build": "favn types && tsc -b && vite build".

Options:
  --root <dir>        the feature's folder (default: the current folder)
  --schema <file>     the tables, relative to --root (default: ${DEFAULT_SCHEMA_FILE})
  -h, --help          show this help
`,
  'db tables': `Usage: favn db [tables] [--root <dir>] [--manifest <file>] [--schema <file>]

Lists the feature's tables, their columns and row counts.
${DB_WHERE_HELP}

Options:
${DB_OPTIONS_HELP}
  -h, --help          show this help
`,
  'db migrate': `Usage: favn db migrate [--allow-destructive] [--root <dir>] [--manifest <file>] [--schema <file>]

Creates the feature's schema and tables, adds columns and indexes to match ${DEFAULT_SCHEMA_FILE}.
A change that loses data (drop or retype a column, drop a table) is refused unless confirmed.
${DB_WHERE_HELP}

Options:
  --allow-destructive
                      confirm changes that lose data: drop and retype columns and tables
${DB_OPTIONS_HELP}
  -h, --help          show this help
`,
  'db reset': `Usage: favn db reset --yes [--root <dir>] [--manifest <file>] [--schema <file>]

Drops the feature's tables and all their rows, then re-creates them empty.
${DB_WHERE_HELP}

Options:
  --yes               confirm; without it nothing is dropped
${DB_OPTIONS_HELP}
  -h, --help          show this help
`,
  'db shell': `Usage: favn db shell [--port 5433] [--root <dir>] [--manifest <file>] [--schema <file>]

While vite runs, prints the psql URL of the database it serves. Otherwise serves the PGlite dev
database (.favn/db) on 127.0.0.1 for psql until Ctrl+C. With DATABASE_URL set, prints how to connect
to that database instead.

Options:
  --port <port>       the port to listen on (default: 5433)
${DB_OPTIONS_HELP}
  -h, --help          show this help
`,
  release: `Usage: favn release [--out <dir>] [--version <v>] [--activate [version]] [--key <file>] [--expires-in 30d]
       favn release keygen [--out <dir>] [--name <name>]

After vite build: copies dist-server/ (feature.json, the server module, the isolate bundle) to
<out>/<version>/ (an existing version is never overwritten), adds it with the sha256 of each file to
<out>/releases.json and signs that index (JWS, EdDSA/Ed25519) with a higher seq. Upload <out>/ to
the CDN; favn serve loads the active version only if the signature and every digest match.

Options:
  --out <dir>         the releases folder, relative to the current folder (default: releases)
  --version <v>       the version (default: "version" of feature.json)
  --activate          publish and make the new version the active one (the first always is)
  --activate <v>      publish nothing: make the published version <v> active (switch or roll back)
  --key <file>        the publisher's Ed25519 private key (PKCS8 PEM); or the FAVN_RELEASE_KEY variable
  --expires-in <n>[smhd]
                      the signed index expires (re-sign before: any publish or --activate)
  --root <dir>        the feature's folder (default: the current folder)
  -h, --help          show this help

keygen writes <name>.pem (private, mode 600) and <name>.pub.pem (for "publicKey" in the favn serve
config) into --out (default: the current folder; --name default: release-key).
`,
  serve: `Usage: favn serve [feature-dir...] [options]

Serves built features (after vite build: dist/ at /<featureId>/, dist-server/ for /rpc) and the
features of the config (endpoint manifests, releases.json). SIGINT/SIGTERM: calls in flight finish,
then it exits. Tables use DATABASE_URL, or PGlite in .favn/db of the current folder. Secrets:
FAVN_SECRET_<FEATURE_ID>__<NAME> variables and the "secrets" env files of the config.

Options:
  --config <file>     favn.config.json with features, auth, allowedHosts, secrets
  --port <port>       the port to listen on (default: 3000)
  --strictPort        exit when the port is taken instead of trying the next one
  --host [addr]       the address to listen on (default: localhost); --host alone: every address
  --allowed-hosts <name,.domain|true>
                      host names to answer besides localhost, IP addresses, the --host name and
                      publicHost (others get 403); ".example.com" allows subdomains, true any host
  --admin-token <token>
                      opens /_admin (16+ characters; or FAVN_ADMIN_TOKEN): a login form in a
                      browser, or "Authorization: Bearer <token>"
  --dev               dev mode: /_admin without a token, 5xx messages reach the client
  -h, --help          show this help
`,
};

const HELP_OPTION = { help: { type: 'boolean', short: 'h', default: false } } as const;
const DB_ARGS = {
  ...HELP_OPTION,
  root: { type: 'string', default: '.' },
  manifest: { type: 'string', default: 'feature.json' },
  schema: { type: 'string', default: DEFAULT_SCHEMA_FILE },
  'allow-destructive': { type: 'boolean', default: false },
  yes: { type: 'boolean', default: false },
  port: { type: 'string', default: '5433' },
} as const;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command) {
    process.stdout.write(HELP);
    return 2;
  }
  if (command === '--help' || command === '-h') return printHelp([]);
  if (command === '--version' || command === '-v') {
    process.stdout.write(`${packageVersion()}\n`);
    return 0;
  }
  if (command === 'help') return printHelp(rest);
  const run = COMMANDS[command];
  if (!run) {
    process.stderr.write(`favn: unknown command "${command}"\n\n${HELP}`);
    return 2;
  }
  try {
    return await run(rest);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (!code?.startsWith('ERR_PARSE_ARGS_')) throw error;
    const name = commandName(command, rest);
    process.stderr.write(`${name}: ${describeArgsError(error as Error)} (see ${name} --help)\n`);
    return 2;
  }
}

const COMMANDS: Record<string, (args: string[]) => Promise<number>> = {
  async check(args) {
    const { values } = parseArgs({
      args,
      options: {
        ...HELP_OPTION,
        fix: { type: 'boolean', default: false },
        root: { type: 'string', default: '.' },
        manifest: { type: 'string', default: 'feature.json' },
      },
      strict: true,
    });
    if (values.help) return printHelp(['check']);
    return runCheck({ root: values.root, manifest: values.manifest, fix: values.fix });
  },

  async types(args) {
    const { values } = parseArgs({
      args,
      options: {
        ...HELP_OPTION,
        root: { type: 'string', default: '.' },
        schema: { type: 'string', default: DEFAULT_SCHEMA_FILE },
      },
      strict: true,
    });
    if (values.help) return printHelp(['types']);
    return runTypes({ root: values.root, schema: values.schema });
  },

  async db(args) {
    const { values, positionals } = parseArgs({ args, allowPositionals: true, options: DB_ARGS, strict: true });
    if (values.help) return printHelp(['db', ...positionals.slice(0, 1)]);
    return runDb(positionals[0] ?? 'tables', {
      root: values.root,
      manifest: values.manifest,
      schema: values.schema,
      allowDestructive: values['allow-destructive'],
      yes: values.yes,
      port: Number(values.port),
    });
  },

  async release(rest) {
    if (rest[0] === 'keygen') {
      const { values } = parseArgs({
        args: rest.slice(1),
        options: {
          ...HELP_OPTION,
          out: { type: 'string', default: '.' },
          name: { type: 'string', default: 'release-key' },
        },
        strict: true,
      });
      if (values.help) return printHelp(['release']);
      return runReleaseKeygen({ out: values.out, name: values.name });
    }
    // `--activate` alone activates the version being published; with a version, only switches.
    const args = rest.flatMap((arg, i) =>
      arg === '--activate' && (rest[i + 1] === undefined || rest[i + 1]!.startsWith('-')) ? ['--activate='] : [arg],
    );
    const { values } = parseArgs({
      args,
      options: {
        ...HELP_OPTION,
        out: { type: 'string', default: 'releases' },
        version: { type: 'string' },
        activate: { type: 'string' },
        key: { type: 'string' },
        'expires-in': { type: 'string' },
        root: { type: 'string', default: '.' },
      },
      strict: true,
    });
    if (values.help) return printHelp(['release']);
    return runRelease({
      root: values.root,
      out: values.out,
      version: values.version,
      activate: values.activate === undefined ? false : values.activate === '' ? true : values.activate,
      key: values.key,
      expiresIn: values['expires-in'],
    });
  },

  async serve(rest) {
    // Like Vite: `--host` alone means every address.
    const args = rest.flatMap((arg, i) =>
      arg === '--host' && (rest[i + 1] === undefined || rest[i + 1]!.startsWith('-')) ? ['--host=0.0.0.0'] : [arg],
    );
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        ...HELP_OPTION,
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
    if (values.help) return printHelp(['serve']);
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
  },
};

/** Prints the help of the command named by `words` (`[]`: the overview); an unknown one is exit 2. */
function printHelp(words: string[]): number {
  if (words.length === 0) {
    process.stdout.write(HELP);
    return 0;
  }
  const text = COMMAND_HELP[words.join(' ')];
  if (text === undefined) {
    process.stderr.write(`favn: unknown command "${words.join(' ')}"\n\n${HELP}`);
    return 2;
  }
  process.stdout.write(text);
  return 0;
}

/** `favn db migrate` for `db --yes migrate`: the words whose help covers the arguments. */
function commandName(command: string, args: string[]): string {
  if (command !== 'db') return `favn ${command}`;
  const [sub] = parseArgs({ args, allowPositionals: true, options: DB_ARGS, strict: false }).positionals;
  return sub !== undefined && COMMAND_HELP[`db ${sub}`] ? `favn db ${sub}` : 'favn db';
}

/** parseArgs' message, without its advice about `--` (favn takes no positional that starts with "-"). */
function describeArgsError(error: Error): string {
  const unknown = /^Unknown option '([^']+)'/.exec(error.message);
  if (unknown) return `unknown option ${unknown[1]}`;
  const first = error.message.split('. ')[0]!;
  return first.charAt(0).toLowerCase() + first.slice(1);
}

/** The version in the package's own package.json, the nearest one above this file (built or not). */
function packageVersion(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    try {
      return (JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { version: string }).version;
    } catch (error) {
      const parent = path.dirname(dir);
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || parent === dir) throw error;
      dir = parent;
    }
  }
}

main(process.argv.slice(2)).then(
  (code) => (process.exitCode = code),
  (error: unknown) => {
    process.stderr.write(`favn: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 2;
  },
);
