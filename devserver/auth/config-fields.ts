import { UsageError } from '../common/usage-error.js';

/**
 * Readers for the fields of one config object. Each names the field in its error (`auth.cookie
 * must be ...`) so the user knows what to change. Internal to the auth config parser.
 */
export class ConfigFields {
  constructor(
    private readonly input: Record<string, unknown>,
    private readonly prefix: string,
    private readonly file: string | undefined,
  ) {}

  /** The usage error for `field`, its message starting with the field's full name. */
  fail(field: string, problem: string): UsageError {
    return new UsageError(`${this.name(field)} ${problem}`, this.file === undefined ? {} : { file: this.file });
  }

  name(field: string): string {
    return `${this.prefix}.${field}`;
  }

  has(field: string): boolean {
    return Object.hasOwn(this.input, field) && this.input[field] !== undefined;
  }

  /** Refuses any field not in `known`, which catches typos like `audiences`. */
  onlyKnown(known: readonly string[], why: (field: string) => string): void {
    for (const field of Object.keys(this.input)) {
      if (!known.includes(field) && this.has(field)) throw this.fail(field, why(field));
    }
  }

  isNull(field: string): boolean {
    return Object.hasOwn(this.input, field) && this.input[field] === null;
  }

  string(field: string): string | undefined {
    if (!this.has(field)) return undefined;
    const value = this.input[field];
    if (typeof value !== 'string' || value.trim() === '')
      throw this.fail(field, `must be a non-empty string (got ${describe(value)})`);
    return value;
  }

  /** Like `string`, but the error never shows the value. */
  secret(field: string): string | undefined {
    if (!this.has(field)) return undefined;
    const value = this.input[field];
    if (typeof value !== 'string' || value === '')
      throw this.fail(field, `must be a non-empty string (got ${value === null ? 'null' : typeof value})`);
    return value;
  }

  boolean(field: string): boolean | undefined {
    if (!this.has(field)) return undefined;
    const value = this.input[field];
    if (typeof value !== 'boolean') throw this.fail(field, `must be true or false (got ${describe(value)})`);
    return value;
  }

  number(field: string, min: number): number | undefined {
    if (!this.has(field)) return undefined;
    const value = this.input[field];
    if (typeof value !== 'number' || !Number.isFinite(value) || value < min)
      throw this.fail(field, `must be a number >= ${min} (got ${describe(value)})`);
    return value;
  }

  stringList(field: string, { nonEmpty = false } = {}): string[] | undefined {
    if (!this.has(field)) return undefined;
    const list = listOfStrings(this.input[field]);
    if (!list) throw this.fail(field, `must be an array of non-empty strings (got ${describe(this.input[field])})`);
    if (nonEmpty && list.length === 0) throw this.fail(field, 'must not be empty');
    return list;
  }

  /** A string or a non-empty array of strings, as `iss` and `aud` accept. */
  oneOrMany(field: string): string | string[] | undefined {
    if (!this.has(field)) return undefined;
    const value = this.input[field];
    if (typeof value === 'string' && value.trim() !== '') return value;
    const list = listOfStrings(value);
    if (!list || list.length === 0)
      throw this.fail(field, `must be a non-empty string or a non-empty array of them (got ${describe(value)})`);
    return list;
  }

  /** An object whose values are arrays of strings, like `{ "admins": ["admin"] }`. */
  listsByKey(field: string): Record<string, string[]> | undefined {
    if (!this.has(field)) return undefined;
    const value = this.input[field];
    if (!isPlainObject(value))
      throw this.fail(field, `must be an object mapping names to arrays of roles (got ${describe(value)})`);
    const entries = Object.entries(value).map(([key, roles]): [string, string[]] => {
      const list = listOfStrings(roles);
      if (!list)
        throw this.fail(
          `${field}[${JSON.stringify(key)}]`,
          `must be an array of non-empty strings (got ${describe(roles)})`,
        );
      return [key, list];
    });
    // fromEntries defines own properties, so a "__proto__" key stays a plain entry.
    return Object.fromEntries(entries);
  }
}

/** A plain object (not null, not an array). */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function listOfStrings(value: unknown): string[] | null {
  if (!Array.isArray(value)) return null;
  if (!value.every((v): v is string => typeof v === 'string' && v.trim() !== '')) return null;
  return [...value];
}

/** A short description of a config value for an error message; `secret` fields never use it. */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}...` : value);
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${String(value)}`;
}
