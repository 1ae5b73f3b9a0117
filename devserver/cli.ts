#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { runCheck } from './cli-check.js';

const HELP = `favn: server functions for Vite feature repos

Usage:
  favn check [--fix] [--root <dir>] [--manifest <file>]
      Compare the exports of all *.server.* modules with serverFunctions.exports of feature.json.
      Exits 1 on a mismatch (for CI). --fix rewrites serverFunctions.exports to match.
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
      options: { fix: { type: 'boolean', default: false }, root: { type: 'string', default: '.' }, manifest: { type: 'string', default: 'feature.json' } },
      strict: true,
    });
    return runCheck({ root: values.root, manifest: values.manifest, fix: values.fix });
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
