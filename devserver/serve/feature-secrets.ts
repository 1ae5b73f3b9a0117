import { readFileSync, statSync } from 'node:fs';
import { parseEnv } from 'node:util';
import { UsageError } from '../common/usage-error.js';

/** Prefix of the environment variables that carry a feature's secrets. */
export const SECRET_ENV_PREFIX = 'FAVN_SECRET_';

const SECRET_NAME = /^[A-Za-z_][A-Za-z0-9_.-]*$/;

/** Each served feature's secrets (`ctx.secrets`), and the sources no served feature used. */
export interface FeatureSecrets {
  /** The secrets of one feature: its env file, then its `FAVN_SECRET_*` variables on top. */
  of(featureId: string): Record<string, string>;
  /** Names (never values) of the sources that matched no served feature, for a warning. */
  unused(servedIds: readonly string[]): string[];
}

/**
 * Reads the secret store of `favn serve`, once at start:
 *
 * - `secrets` of `favn.config.json`: `{"feature-x": "./secrets/feature-x.env"}`, one `.env` file per
 *   feature (`NAME=value` lines, parsed like `.env.local` in dev);
 * - environment variables `FAVN_SECRET_<FEATURE_ID>__<NAME>`, the feature id upper-cased with `-`
 *   as `_` (`FAVN_SECRET_FEATURE_X__API_KEY` is `API_KEY` of `feature-x`). The name is what follows
 *   the last `__`, so the variable names one feature only. A variable wins over the file.
 *
 * Values never appear in a message: errors and warnings name files and variables only.
 *
 * @example
 * const secrets = readFeatureSecrets({ 'feature-x': '/srv/secrets/feature-x.env' }, process.env)
 * secrets.of('feature-x').API_KEY
 */
export function readFeatureSecrets(
  files: Readonly<Record<string, string>>,
  env: Readonly<Record<string, string | undefined>>,
  warn: (message: string) => void = () => {},
): FeatureSecrets {
  const fromFiles = new Map(Object.entries(files).map(([featureId, file]) => [featureId, readSecretsFile(file, warn)]));
  const fromEnv = new Map<string, Record<string, string>>();
  for (const [variable, value] of Object.entries(env)) {
    if (!variable.startsWith(SECRET_ENV_PREFIX) || value === undefined) continue;
    const rest = variable.slice(SECRET_ENV_PREFIX.length);
    const split = rest.lastIndexOf('__');
    const name = rest.slice(split + 2);
    if (split <= 0 || !SECRET_NAME.test(name)) {
      const like = 'FAVN_SECRET_<FEATURE_ID>__<NAME>, like FAVN_SECRET_FEATURE_X__API_KEY';
      warn(`favn serve: ignored ${variable}: name secrets ${like}`);
      continue;
    }
    const key = rest.slice(0, split);
    fromEnv.set(key, { ...fromEnv.get(key), [name]: value });
  }
  return {
    of(featureId) {
      return { ...fromFiles.get(featureId), ...fromEnv.get(envKey(featureId)) };
    },
    unused(servedIds) {
      const served = new Set(servedIds);
      const envKeys = new Set(servedIds.map(envKey));
      return [
        ...[...fromFiles.keys()].filter((id) => !served.has(id)).map((id) => `"secrets" entry "${id}"`),
        ...[...fromEnv.keys()].filter((key) => !envKeys.has(key)).map((key) => `${SECRET_ENV_PREFIX}${key}__*`),
      ];
    },
  };
}

/**
 * The part of a secret's variable name that names the feature.
 *
 * @example
 * secretEnvName('feature-x', 'API_KEY') // 'FAVN_SECRET_FEATURE_X__API_KEY'
 */
export function secretEnvName(featureId: string, name: string): string {
  return `${SECRET_ENV_PREFIX}${envKey(featureId)}__${name}`;
}

function envKey(featureId: string): string {
  return featureId.toUpperCase().replaceAll('-', '_');
}

function readSecretsFile(file: string, warn: (message: string) => void): Record<string, string> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new UsageError(`Cannot read the secrets file ${file}: ${code}`, { file });
  }
  // Others on the machine should not read a feature's secrets.
  if (process.platform !== 'win32' && statSync(file).mode & 0o004) {
    warn(`favn serve: the secrets file ${file} can be read by every user of this machine; restrict it (chmod 600)`);
  }
  const parsed = parseEnv(text) as Record<string, string>;
  const entries = Object.entries(parsed).filter(([name]) => SECRET_NAME.test(name));
  // A malformed line's "name" may hold part of a value: count such lines, never show them.
  const dropped = Object.keys(parsed).length - entries.length;
  if (dropped) warn(`favn serve: ${file}: ignored ${dropped} malformed line(s); write NAME=value`);
  return Object.fromEntries(entries);
}
