import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  copyFixture,
  editFile,
  FAVN_CLI,
  removeFixture,
  REPO_ROOT,
  run,
  type CommandResult,
} from '../../fixtures/harness-fixture.js';

// The built CLI as users run it (`npm run build` makes it), in a scratch folder outside the repo.

let scratch: string;
beforeAll(async () => {
  scratch = await mkdtemp(path.join(tmpdir(), 'favn-cli-'));
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

function favn(args: string[], cwd = scratch): Promise<CommandResult> {
  return run(process.execPath, ['--no-node-snapshot', FAVN_CLI, ...args], { cwd, timeoutMs: 60_000 });
}

let features = 0;

/** A feature folder with `feature.json` as `manifest` (written as it is) and `src/api.server.ts`. */
async function feature(manifest: string, source: string): Promise<string> {
  const dir = path.join(scratch, `feature-${++features}`);
  await mkdir(path.join(dir, 'src'), { recursive: true });
  await writeFile(path.join(dir, 'feature.json'), manifest);
  await writeFile(path.join(dir, 'src', 'api.server.ts'), source);
  return dir;
}

/** A server module exporting `names` in this order. */
function exporting(...names: string[]): string {
  return names.map((name) => `export async function ${name}() {\n  return '${name}';\n}\n`).join('');
}

describe('favn --version and help', () => {
  it('--version and -v print the version of the package, from any folder', async () => {
    const { version } = JSON.parse(await readFile(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
    for (const flag of ['--version', '-v']) {
      const result = await favn([flag]);
      expect([result.code, result.stdout, result.stderr]).toEqual([0, `${version}\n`, '']);
    }
  });

  it.each([
    [['check', '--help'], 'Usage: favn check [--fix]'],
    [['check', '-h'], 'Usage: favn check [--fix]'],
    [['help', 'check'], 'Usage: favn check [--fix]'],
    [['db', '--help'], 'Usage: favn db [tables|migrate|reset|shell]'],
    [['help', 'db'], 'Usage: favn db [tables|migrate|reset|shell]'],
    [['db', 'migrate', '--help'], 'Usage: favn db migrate [--allow-destructive]'],
    [['help', 'db', 'migrate'], 'Usage: favn db migrate [--allow-destructive]'],
    [['db', 'reset', '--help'], 'Usage: favn db reset --yes'],
    [['serve', '--help'], 'Usage: favn serve [feature-dir...]'],
    [['help', 'serve'], 'Usage: favn serve [feature-dir...]'],
  ])('favn %j prints that command help and exits 0 without running it', async (args, usage) => {
    // The scratch folder has no feature.json: a command that ran would fail.
    const result = await favn(args);
    expect([result.code, result.stderr]).toEqual([0, '']);
    expect(result.stdout.startsWith(`${usage}`)).toBe(true);
  });

  it('each help names the options its command takes', async () => {
    expect((await favn(['db', 'migrate', '--help'])).stdout).toContain('--allow-destructive');
    expect((await favn(['db', 'reset', '--help'])).stdout).toContain('--yes');
    const serve = (await favn(['serve', '--help'])).stdout;
    for (const option of ['--config', '--port', '--host', '--strictPort', '--allowed-hosts', '--admin-token', '--dev'])
      expect(serve).toContain(option);
    const help = await favn(['--help']);
    expect([help.code, help.stdout]).toEqual([0, expect.stringContaining('favn -v, --version')]);
  });

  it.each([
    [['check', '--bogus'], 'favn check: unknown option --bogus (see favn check --help)'],
    [['db', 'migrate', '--force'], 'favn db migrate: unknown option --force (see favn db migrate --help)'],
    [['db', '--yes', 'reset', '-f'], 'favn db reset: unknown option -f (see favn db reset --help)'],
    [['serve', '--hots', 'x'], 'favn serve: unknown option --hots (see favn serve --help)'],
    [['check', '--root'], "favn check: option '--root <value>' argument missing (see favn check --help)"],
  ])('favn %j: a clear error that points at the help, exit 2', async (args, message) => {
    const result = await favn(args);
    expect([result.code, result.stderr, result.stdout]).toEqual([2, `${message}\n`, '']);
  });

  it('an unknown command, also after help, is exit 2 with the overview', async () => {
    for (const args of [['deploy'], ['help', 'deploy'], ['help', 'db', 'drop']]) {
      const result = await favn(args);
      expect(result.code).toBe(2);
      expect(result.stderr).toContain(`unknown command "${args.slice(args[0] === 'help' ? 1 : 0).join(' ')}"`);
      expect(result.stderr).toContain('favn help <command>');
    }
  });
});

describe('favn check --fix', () => {
  it("keeps the list's order and layout: removed names leave in place, new ones come last in source order", async () => {
    const manifest = [
      '{',
      '    "id": "feature-order",',
      '    "serverFunctions": {',
      '        "module": "server-functions.js",',
      '        "exports": [',
      '            "zeta",',
      '            "gone",',
      '            "alpha"',
      '        ]',
      '    },',
      '    "description": "four spaces, keys in this order"',
      '}',
      '',
    ].join('\n');
    const dir = await feature(manifest, exporting('alpha', 'newOne', 'zeta', 'another'));
    const fix = await favn(['check', '--fix'], dir);
    expect(fix.code).toBe(0);
    expect(fix.stdout).toContain('Updated serverFunctions.exports in feature.json: zeta, alpha, newOne, another');
    expect(await readFile(path.join(dir, 'feature.json'), 'utf8')).toBe(
      manifest.replace(
        '            "gone",\n            "alpha"\n',
        '            "alpha",\n            "newOne",\n            "another"\n',
      ),
    );
    const check = await favn(['check'], dir);
    expect([check.code, check.stdout]).toEqual([0, expect.stringContaining('4 server function(s) match')]);
  });

  it('keeps a list written on one line on one line, and the rest of the file as written', async () => {
    const manifest =
      '{\n\t"id": "feature-inline",\n\t"serverFunctions": {"module": "m.js", "exports": ["b", "old"]}\n}';
    const dir = await feature(manifest, exporting('a', 'b'));
    expect((await favn(['check', '--fix'], dir)).code).toBe(0);
    expect(await readFile(path.join(dir, 'feature.json'), 'utf8')).toBe(manifest.replace('["b", "old"]', '["b", "a"]'));
  });

  it('writes a list that outgrows its line one name per line, indented like the file', async () => {
    const manifest = '{\n  "id": "feature-grow",\n  "serverFunctions": { "module": "m.js", "exports": [] }\n}\n';
    const names = ['listReports', 'createReport', 'archiveReport', 'restoreReport', 'exportReportAsCsv'];
    const dir = await feature(manifest, exporting(...names));
    expect((await favn(['check', '--fix'], dir)).code).toBe(0);
    const written = await readFile(path.join(dir, 'feature.json'), 'utf8');
    expect(written).toBe(manifest.replace('[]', `[\n${names.map((name) => `    "${name}"`).join(',\n')}\n  ]`));
  });

  it('adds serverFunctions to a manifest without it, in the indentation of the file', async () => {
    const dir = await feature('{\n\t"id": "feature-none",\n\t"version": "1.0.0"\n}\n', exporting('getData'));
    expect((await favn(['check', '--fix'], dir)).code).toBe(0);
    expect(await readFile(path.join(dir, 'feature.json'), 'utf8')).toBe(
      '{\n\t"id": "feature-none",\n\t"version": "1.0.0",\n\t"serverFunctions": {\n\t\t"module": "server-functions.js",\n' +
        '\t\t"exports": [\n\t\t\t"getData"\n\t\t]\n\t}\n}\n',
    );
  });
});

describe('favn check: timeoutMs inside serverFunctions', () => {
  const module = (extra: string) =>
    `{"id": "feature-timeout",${extra} "serverFunctions": {"module": "m.js", "exports": ["getData"], "timeoutMs": 500}}`;

  it('is read without a warning', async () => {
    const dir = await feature(module(''), exporting('getData'));
    const check = await favn(['check'], dir);
    expect([check.code, check.stdout]).toEqual([0, expect.stringContaining('1 server function(s) match')]);
    expect(check.stdout).not.toContain('ignored');
  });

  it('differing from the top-level timeoutMs is an error naming both', async () => {
    const dir = await feature(module(' "timeoutMs": 800,'), exporting('getData'));
    const check = await favn(['check'], dir);
    expect(check.code).toBe(2);
    expect(check.stderr).toContain(
      '"serverFunctions.timeoutMs" is 500, but "timeoutMs" at the top level is 800: write it once',
    );
  });
});

describe('favn db: the commands a refused migration suggests', () => {
  let dir: string | undefined;
  afterAll(async () => {
    if (dir) await removeFixture(dir);
  });

  it('each runs as printed and exits 0', async () => {
    dir = await copyFixture('crud');
    expect((await favn(['db', 'migrate'], dir)).code).toBe(0);
    await editFile(dir, 'server/schema.ts', (t) => t.replace('      tags: v.optional(v.json()),\n', ''));
    const refused = await favn(['db', 'migrate'], dir);
    expect(refused.code).toBe(2);
    const suggested = [...refused.stderr.matchAll(/^ +npx favn (.+?) {2,}\(/gm)].map((m) => m[1]!);
    expect(suggested).toEqual(['db migrate --allow-destructive', 'db reset --yes']);
    for (const command of suggested) {
      const result = await favn(command.split(' '), dir);
      expect(result.code, `${command}: ${result.stderr}`).toBe(0);
    }
  });
});
