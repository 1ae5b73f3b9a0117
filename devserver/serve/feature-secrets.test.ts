import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFeatureSecrets, secretEnvName } from './feature-secrets.js';

const VALUE = 'sk-live-7f3a9c1e5b2d4f60';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'favn-secrets-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const envFile = async (name: string, text: string, mode = 0o600) => {
  const file = path.join(dir, name);
  await writeFile(file, text);
  await chmod(file, mode);
  return file;
};

describe('the secret store of favn serve', () => {
  it('reads a .env file per feature, and FAVN_SECRET_<FEATURE_ID>__<NAME> variables on top', async () => {
    const file = await envFile('x.env', `# comment\nAPI_KEY=${VALUE}\nQUOTED="two words"\nSHARED=from-file\n`);
    const secrets = readFeatureSecrets(
      { 'feature-x': file },
      { FAVN_SECRET_FEATURE_X__SHARED: 'from-env', FAVN_SECRET_FEATURE_X__TOKEN: 't', PATH: '/bin' },
    );
    expect(secrets.of('feature-x')).toEqual({ API_KEY: VALUE, QUOTED: 'two words', SHARED: 'from-env', TOKEN: 't' });
    expect(secrets.of('feature-y')).toEqual({});
    expect(secretEnvName('feature-x', 'API_KEY')).toBe('FAVN_SECRET_FEATURE_X__API_KEY');
  });

  it("a variable names one feature only: another feature's secret never leaks into a feature whose id is a prefix", () => {
    // Feature "a--b" is A__B; its KEY must not become "B__KEY" of feature "a".
    const secrets = readFeatureSecrets({}, { FAVN_SECRET_A__B__KEY: 'for a--b', FAVN_SECRET_A__KEY: 'for a' });
    expect(secrets.of('a')).toEqual({ KEY: 'for a' });
    expect(secrets.of('a--b')).toEqual({ KEY: 'for a--b' });
  });

  it('reports sources that match no served feature by name, never by value', async () => {
    const file = await envFile('typo.env', `API_KEY=${VALUE}\n`);
    const warnings: string[] = [];
    const secrets = readFeatureSecrets(
      { 'feature-typo': file },
      { FAVN_SECRET_FEATURE_Z__API_KEY: VALUE, FAVN_SECRET_NONAME: VALUE },
      (m) => warnings.push(m),
    );
    expect(secrets.unused(['feature-x'])).toEqual(['"secrets" entry "feature-typo"', 'FAVN_SECRET_FEATURE_Z__*']);
    expect(warnings).toEqual([
      expect.stringMatching(/^favn serve: ignored FAVN_SECRET_NONAME: name secrets FAVN_SECRET_<FEATURE_ID>__<NAME>/),
    ]);
    expect(JSON.stringify([warnings, secrets.unused([])])).not.toContain(VALUE);
  });

  it('a missing file stops the start with a usage error naming the file, not its content', () => {
    const missing = path.join(dir, 'missing.env');
    expect(() => readFeatureSecrets({ 'feature-x': missing }, {})).toThrowError(
      `Cannot read the secrets file ${missing}: ENOENT`,
    );
  });

  it.skipIf(process.platform === 'win32')(
    'warns when every user of the machine can read the file, and about malformed lines without showing them',
    async () => {
      const file = await envFile('open.env', `API_KEY=${VALUE}\nno equals sign ${VALUE}\n=${VALUE}\n`, 0o644);
      const warnings: string[] = [];
      const secrets = readFeatureSecrets({ 'feature-x': file }, {}, (m) => warnings.push(m));
      expect(secrets.of('feature-x')).toEqual({ API_KEY: VALUE });
      expect(warnings.join('\n')).toMatch(/can be read by every user of this machine; restrict it \(chmod 600\)/);
      expect(warnings.join('\n')).not.toContain(VALUE);
    },
  );
});
