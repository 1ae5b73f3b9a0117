/**
 * `v.*` validators: column types for `defineTable`, and argument validators. Each one is a
 * Standard Schema (`~standard`), so anything that accepts zod or valibot accepts these too.
 *
 * @example
 * const rules = defineTable({ text: v.string(), votes: v.int(), tags: v.optional(v.json()) })
 */

/** One failed check, with the path to the value that failed. */
export interface Issue {
  message: string;
  path: (string | number)[];
}

/** The Standard Schema v1 interface, as every validator exposes it. */
export interface StandardSchemaV1<T = unknown> {
  readonly '~standard': {
    readonly version: 1;
    readonly vendor: string;
    readonly validate: (
      value: unknown,
    ) =>
      | { value: T; issues?: undefined }
      | { issues: readonly { message: string; path?: readonly (PropertyKey | { key: PropertyKey })[] }[] };
    readonly types?: { readonly input: T; readonly output: T };
  };
}

/** What a validator describes, for the SQL layer. */
export type ValidatorKind =
  'string' | 'number' | 'int' | 'boolean' | 'json' | 'id' | 'optional' | 'literal' | 'union' | 'array' | 'object';

export interface Validator<T = unknown> extends StandardSchemaV1<T> {
  readonly kind: ValidatorKind;
  /** `v.id(table)`: the referenced table. */
  readonly table?: string;
  /** `v.optional(inner)`, `v.array(inner)`. */
  readonly inner?: Validator;
  /** `v.union(...)`. */
  readonly members?: readonly Validator[];
  /** `v.literal(value)`. */
  readonly value?: string | number | boolean;
  /** `v.object(shape)`. */
  readonly shape?: Readonly<Record<string, Validator>>;
  /** Issues of `value`, empty when it is valid. */
  check(value: unknown, path?: (string | number)[]): Issue[];
}

/** The TypeScript type a validator accepts. */
export type Infer<V> = V extends Validator<infer T> ? T : never;

function make<T>(
  kind: ValidatorKind,
  check: (value: unknown, path: (string | number)[]) => Issue[],
  extra: Partial<Validator> = {},
): Validator<T> {
  const validator: Validator<T> = {
    kind,
    ...extra,
    check: (value, path = []) => check(value, path),
    '~standard': {
      version: 1,
      vendor: 'favn',
      validate: (value) => {
        const issues = check(value, []);
        return issues.length
          ? { issues: issues.map((i) => ({ message: i.message, path: i.path })) }
          : { value: value as T };
      },
    },
  };
  return Object.freeze(validator);
}

const issue = (path: (string | number)[], expected: string, value: unknown): Issue[] => [
  { path, message: `expected ${expected}, got ${describe(value)}` },
];

/** The most characters of a received string that a message repeats. */
const SHOWN_CHARS = 40;

/**
 * The received value for a message, short: a number or boolean as written, a string as JSON (cut
 * after 40 characters, its length given), and only the kind of an object, array or function.
 */
function describe(value: unknown): string {
  if (value === null || value === undefined || typeof value === 'number' || typeof value === 'boolean')
    return String(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'string') {
    if (value.length <= SHOWN_CHARS) return JSON.stringify(value);
    // Never half of a surrogate pair.
    const end = /[\uD800-\uDBFF]/.test(value.charAt(SHOWN_CHARS - 1)) ? SHOWN_CHARS - 1 : SHOWN_CHARS;
    return `${JSON.stringify(value.slice(0, end))}... (${value.length} characters)`;
  }
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const v = {
  string: () => make<string>('string', (x, p) => (typeof x === 'string' ? [] : issue(p, 'string', x))),
  number: () =>
    make<number>('number', (x, p) => (typeof x === 'number' && Number.isFinite(x) ? [] : issue(p, 'finite number', x))),
  int: () => make<number>('int', (x, p) => (Number.isSafeInteger(x) ? [] : issue(p, 'integer', x))),
  boolean: () => make<boolean>('boolean', (x, p) => (typeof x === 'boolean' ? [] : issue(p, 'boolean', x))),
  /** Any JSON value (stored as `jsonb`). */
  json: () => make<unknown>('json', (x, p) => (isJson(x) ? [] : issue(p, 'JSON value', x))),
  /** The `id` of a row of `table` (a UUID). */
  id: <Table extends string>(table: Table) =>
    make<string>('id', (x, p) => (typeof x === 'string' && UUID.test(x) ? [] : issue(p, `id of a "${table}" row`, x)), {
      table,
    }),
  optional: <T>(inner: Validator<T>) =>
    make<T | undefined | null>('optional', (x, p) => (x === undefined || x === null ? [] : inner.check(x, p)), {
      inner: inner as Validator,
    }),
  literal: <const L extends string | number | boolean>(value: L) =>
    make<L>(
      'literal',
      (x, p) => (x === value ? [] : [{ path: p, message: `expected ${JSON.stringify(value)}, got ${describe(x)}` }]),
      { value },
    ),
  union: <const M extends readonly Validator[]>(...members: M) =>
    make<Infer<M[number]>>(
      'union',
      (x, p) =>
        members.some((m) => m.check(x, p).length === 0)
          ? []
          : [{ path: p, message: `expected one of ${members.map(label).join(' | ')}, got ${describe(x)}` }],
      { members },
    ),
  array: <T>(inner: Validator<T>) =>
    make<T[]>(
      'array',
      (x, p) => (Array.isArray(x) ? x.flatMap((item, i) => inner.check(item, [...p, i])) : issue(p, 'array', x)),
      { inner: inner as Validator },
    ),
  object: <S extends Record<string, Validator>>(shape: S) =>
    make<{ [K in keyof S]: Infer<S[K]> }>('object', (x, p) => checkObject(shape, x, p), { shape }),
};

function checkObject(shape: Record<string, Validator>, x: unknown, p: (string | number)[]): Issue[] {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) return issue(p, 'object', x);
  const record = x as Record<string, unknown>;
  const issues: Issue[] = [];
  for (const key of Object.keys(record))
    if (!Object.hasOwn(shape, key)) issues.push({ path: [...p, key], message: 'unknown field' });
  for (const [key, validator] of Object.entries(shape))
    issues.push(...validator.check(Object.hasOwn(record, key) ? record[key] : undefined, [...p, key]));
  return issues;
}

function label(validator: Validator): string {
  return validator.kind === 'literal' ? JSON.stringify(validator.value) : validator.kind;
}

function isJson(x: unknown, depth = 0): boolean {
  if (depth > 64) return false;
  if (x === null || typeof x === 'string' || typeof x === 'boolean') return true;
  if (typeof x === 'number') return Number.isFinite(x);
  if (Array.isArray(x)) return x.every((i) => isJson(i, depth + 1));
  if (typeof x === 'object')
    return Object.getPrototypeOf(x) === Object.prototype && Object.values(x).every((i) => isJson(i, depth + 1));
  return false;
}

/**
 * Formats issues as the contract's 422 text: `args[0].title: expected string, got 42`.
 *
 * @example
 * formatIssues(v.string().check(1, ['args', 0])) // 'args[0]: expected string, got 1'
 */
export function formatIssues(issues: readonly { message: string; path?: readonly unknown[] }[]): string {
  return issues
    .map((i) => {
      const path = (i.path ?? []).map((seg) =>
        typeof seg === 'object' && seg !== null && 'key' in seg ? (seg as { key: unknown }).key : seg,
      );
      const text = path.reduce<string>(
        (acc, seg) => (typeof seg === 'number' ? `${acc}[${seg}]` : acc ? `${acc}.${String(seg)}` : String(seg)),
        '',
      );
      return text ? `${text}: ${i.message}` : i.message;
    })
    .join('; ');
}
