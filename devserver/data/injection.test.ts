/**
 * Client-controlled input must never reach SQL as code. Every field a client controls is fed a
 * corpus of hostile strings and shapes; each one is either refused with 400/422 naming the field,
 * or bound as a value while the SQL text stays exactly what a harmless value produces.
 * Request bodies are built from JSON text, as the RPC route receives them (so `__proto__` is an own key).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RequestError } from '../../runtime/request-error.js';
import type { ServerContext } from '../../runtime/server.js';
import { migrate } from './migrate.js';
import { openPglite } from './pglite-client.js';
import type { SqlClient } from './sql-client.js';
import { compileQueryRows } from './compile-query.js';
import { compileDeleteRow, compileInsertRow, compilePatchRow } from './compile-write.js';
import type { CompiledFunction, Statement } from './statement.js';
import { quoteIdent } from './table-model.js';

import { model, notes, rules } from './__fixtures__/rules-schema.js';

const ID = '0f8fad5b-d9cb-469f-a165-70867728950e';

function makeCtx(userId: string | null): ServerContext {
  return {
    requestId: 'req-1',
    featureId: 'feature-rules',
    userRoles: [],
    claims: userId === null ? null : { sub: userId },
    visibility: { tenantId: null, featureToggles: [] },
    auth: { userId },
    db: {} as ServerContext['db'],
    secrets: {},
    signal: new AbortController().signal,
  };
}
const alice = makeCtx('alice');

const listRules = compileQueryRows(rules, {}, 'listRules');
const addRule = compileInsertRow(rules, {}, 'addRule');
const patchRule = compilePatchRow(rules, {}, 'patchRule');
const deleteRule = compileDeleteRow(rules, {}, 'deleteRule');
const scope = { ownerId: 'auth.userId' };
const listNotes = compileQueryRows(notes, { scope }, 'listNotes');
const addNote = compileInsertRow(notes, { scope }, 'addNote');
const patchNote = compilePatchRow(notes, { scope }, 'patchNote');

/** JSON text of a value, to splice into a request body. */
const j = (value: unknown): string => JSON.stringify(value);
/** A received string as a 422 message shows it: as JSON, cut after 40 characters. */
const shown = (s: string): string => (s.length <= 40 ? j(s) : `${j(s.slice(0, 40))}... (${s.length} characters)`);
/** The `args` of a request body, parsed as the RPC route parses it. */
const parseArgs = (json: string): unknown[] => (JSON.parse(`{"args": ${json}}`) as { args: unknown[] }).args;
const cursorOf = (value: unknown, id: unknown): string =>
  Buffer.from(JSON.stringify([value, id])).toString('base64url');
const rawCursor = (json: string): string => Buffer.from(json).toString('base64url');

// ---------------------------------------------------------------------------------------------
// The SQL text whitelist: quoted identifiers of this schema, keywords, punctuation, $n.

const KEYWORDS = new Set([
  'SELECT',
  'FROM',
  'WHERE',
  'AND',
  'ORDER',
  'BY',
  'ASC',
  'DESC',
  'LIMIT',
  'IS',
  'NOT',
  'NULL',
  'LIKE',
  'ANY',
  'INSERT',
  'INTO',
  'VALUES',
  'DEFAULT',
  'RETURNING',
  'UPDATE',
  'SET',
  'DELETE',
]);
const IDENTIFIERS = new Set([
  quoteIdent(model.schema),
  ...[...model.tables.values()].flatMap((t) => [quoteIdent(t.name), ...[...t.columns.values()].map((c) => c.sql)]),
]);
const TOKEN = /( )|("[A-Za-z][A-Za-z0-9_]*")|\$([1-9][0-9]*)(?:::jsonb)?|([A-Z]+)|(<>|<=|>=|[=<>(),.*])/y;

/** Everything in `text` that is not an allowed token, and the `$n` numbers it uses. */
function scanSql(text: string): { violations: string[]; placeholders: number[] } {
  const violations: string[] = [];
  const placeholders: number[] = [];
  let pos = 0;
  while (pos < text.length) {
    TOKEN.lastIndex = pos;
    const match = TOKEN.exec(text);
    if (!match) {
      violations.push(text.slice(pos, pos + 30));
      break;
    }
    const [token, , quoted, placeholder, word] = match;
    if (quoted !== undefined && !IDENTIFIERS.has(quoted)) violations.push(quoted);
    if (word !== undefined && !KEYWORDS.has(word)) violations.push(word);
    if (placeholder !== undefined) placeholders.push(Number(placeholder));
    pos += token.length;
  }
  return { violations, placeholders };
}

/** `text` is made only of whitelisted tokens and uses $1..$n once each for its n values. */
function expectSafe(statement: Statement): void {
  const { violations, placeholders } = scanSql(statement.text);
  expect(violations, statement.text.slice(0, 300)).toEqual([]);
  expect(placeholders.sort((a, b) => a - b)).toEqual(statement.values.map((_, i) => i + 1));
}

/** The RequestError `fn` throws (fails when it throws nothing or something else). */
function refusal(fn: () => unknown): RequestError {
  try {
    fn();
  } catch (error) {
    if (error instanceof RequestError) return error;
    throw error;
  }
  throw new Error('expected the input to be refused, but a statement was prepared');
}

// ---------------------------------------------------------------------------------------------
// The corpus.

interface Payload {
  name: string;
  value: string;
  /** PostgreSQL cannot store it in text/jsonb, so it must be refused before the database. */
  postgresRejects?: true;
}

const HUGE = `'; DROP TABLE rules; --${'\'"'.repeat(100_000)}`;

const PAYLOADS: Payload[] = [
  { name: 'single quote', value: "'" },
  { name: 'double quote', value: '"' },
  { name: 'doubled quotes', value: `''""` },
  { name: 'line comment', value: '-- comment' },
  { name: 'block comment', value: '/* */' },
  { name: 'unterminated block comment', value: '/*' },
  { name: 'statement separator', value: ';' },
  { name: 'drop table', value: "'; DROP TABLE rules; --" },
  { name: 'drop table, quoted names', value: '"; DROP TABLE "ext_feature_rules"."rules"; --' },
  { name: 'tautology', value: ') OR 1=1 --' },
  { name: 'quoted tautology', value: "' OR '1'='1" },
  { name: 'union select', value: "' UNION SELECT * FROM pg_roles --" },
  { name: 'identifier break-out', value: 'text"; --' },
  { name: 'identifier break-out with tautology', value: 'votes" OR 1=1 OR "' },
  { name: 'dollar quoting', value: '$$; DROP TABLE rules; $$' },
  { name: 'placeholder look-alike', value: '$1' },
  { name: 'cast look-alike', value: "'x'::regclass" },
  { name: 'backslash escape', value: "\\'; DROP TABLE rules; --" },
  { name: 'E-string', value: "E'\\x27; DROP TABLE rules; --'" },
  { name: 'LIKE wildcards', value: '%_%\\%' },
  { name: 'newlines', value: 'a\r\n; DROP TABLE rules;\n--' },
  { name: 'fullwidth letters', value: 'ｒｕｌｅｓ' },
  { name: 'fullwidth quote', value: '＇; DROP TABLE rules; --' },
  { name: 'right-to-left override', value: '\u202Etext\u202C' },
  { name: 'right-to-left mark', value: 'text\u200F' },
  { name: 'zero-width space', value: 'te\u200Bxt' },
  { name: 'emoji', value: '💣; DROP TABLE rules; --' },
  { name: '__proto__', value: '__proto__' },
  { name: 'constructor', value: 'constructor' },
  { name: 'prototype', value: 'prototype' },
  { name: 'toString', value: 'toString' },
  { name: 'empty', value: '' },
  { name: 'huge', value: HUGE },
  { name: 'NUL', value: 'text\u0000; DROP TABLE rules', postgresRejects: true },
  { name: 'NUL alone', value: '\u0000', postgresRejects: true },
];
/** Strings PostgreSQL stores unchanged: these must be accepted wherever a string is. */
const STORABLE = PAYLOADS.filter((p) => !p.postgresRejects);

/** Names that look like a column of this schema, but are not one. */
const NAME_LOOKALIKES: Payload[] = [
  { name: 'already quoted', value: '"text"' },
  { name: 'capitalised', value: 'Text' },
  { name: 'upper case', value: 'TEXT' },
  { name: 'trailing space', value: 'text ' },
  { name: 'leading space', value: ' text' },
  { name: 'qualified', value: 'rules.text' },
  { name: 'schema-qualified', value: 'ext_feature_rules.rules' },
  { name: 'quoted qualified', value: '"rules"."text"' },
  { name: 'star', value: '*' },
  { name: 'column list', value: 'votes, "id"' },
  { name: 'NUL suffix', value: 'text\u0000' },
  { name: 'zero-width inside', value: 'tex\u200Bt' },
  { name: 'fullwidth', value: 'ｔｅｘｔ' },
  { name: 'lone surrogate', value: '\uD800' },
  { name: 'hasOwnProperty', value: 'hasOwnProperty' },
  { name: 'valueOf', value: 'valueOf' },
  { name: 'a digit', value: '1' },
];

/** Operators that are not on the list. */
const OPERATOR_LOOKALIKES = [
  '$where',
  'raw',
  'sql',
  'or',
  'and',
  'not',
  'regex',
  'ilike',
  'similar',
  'between',
  'contains',
  '$ne',
  '$eq',
  '$gt',
  'EQ',
  'Eq',
  'eq ',
  ' eq',
  '=',
  '==',
  'isnull',
  'notNull',
  'like; --',
  'eq"',
  'in)',
].map((value) => ({ name: value, value }));

const NAMES: Payload[] = [...PAYLOADS, ...NAME_LOOKALIKES, ...OPERATOR_LOOKALIKES];

describe('the test tools', () => {
  it('the whitelist accepts compiled SQL and flags anything else', () => {
    expect(scanSql('SELECT * FROM "ext_feature_rules"."rules" WHERE "votes" >= $1 ORDER BY "id" ASC LIMIT $2')).toEqual(
      { violations: [], placeholders: [1, 2] },
    );
    expect(
      scanSql('INSERT INTO "ext_feature_rules"."rules" ("tags") VALUES ($1::jsonb) RETURNING *').violations,
    ).toEqual([]);
    for (const bad of [
      'WHERE "text" = \'a\'',
      'SELECT 1; DROP',
      'SELECT -- x',
      'SELECT /* x */',
      '"text"; --',
      '"ext_feature_rules"."pg_roles"',
      'WHERE "text" = $1 or 1',
      'LIMIT $0',
      'SELECT\n*',
      '"text""x"',
    ]) {
      expect(scanSql(bad).violations, bad).not.toEqual([]);
    }
  });

  it('bodies are parsed from JSON, so __proto__ is an own key as in a real request', () => {
    const [input] = parseArgs(`[{"where": {${j('__proto__')}: {"eq": "a"}}}]`) as [{ where: object }];
    expect(Object.hasOwn(input.where, '__proto__')).toBe(true);
    expect(Object.getPrototypeOf(input.where)).toBe(Object.prototype);
  });

  it('the corpus has no duplicate values', () => {
    expect(new Set(NAMES.map((p) => p.value)).size).toBe(NAMES.length);
  });
});

// ---------------------------------------------------------------------------------------------
// Names: every field that names a column, operator or key refuses every corpus entry.

interface NameField {
  field: string;
  fn: CompiledFunction;
  args: (name: string) => string;
  status: 400 | 422;
  message: (name: string) => string;
}

const NAME_FIELDS: NameField[] = [
  {
    field: 'where column',
    fn: listRules,
    args: (n) => `[{"where": {${j(n)}: {"eq": "a"}}}]`,
    status: 400,
    message: (n) => `Invalid query: unknown column ${j(n)} in "where"`,
  },
  {
    field: 'where column of a scoped query',
    fn: listNotes,
    args: (n) => `[{"where": {${j(n)}: {"eq": "a"}}}]`,
    status: 400,
    message: (n) => `Invalid query: unknown column ${j(n)} in "where"`,
  },
  {
    field: 'where operator (text)',
    fn: listRules,
    args: (n) => `[{"where": {"text": {${j(n)}: "a"}}}]`,
    status: 400,
    message: (n) => `Invalid query: unknown operator ${j(n)} on "text"`,
  },
  {
    field: 'where operator (int)',
    fn: listRules,
    args: (n) => `[{"where": {"votes": {"eq": 1, ${j(n)}: 1}}}]`,
    status: 400,
    message: (n) => `Invalid query: unknown operator ${j(n)} on "votes"`,
  },
  {
    field: 'where operator (JSON)',
    fn: listRules,
    args: (n) => `[{"where": {"tags": {${j(n)}: true}}}]`,
    status: 400,
    message: (n) => `Invalid query: unknown operator ${j(n)} on "tags"`,
  },
  {
    field: 'orderBy.column',
    fn: listRules,
    args: (n) => `[{"orderBy": {"column": ${j(n)}}}]`,
    status: 400,
    message: (n) => `Invalid query: "orderBy" names unknown column ${j(n)}`,
  },
  {
    field: 'orderBy.direction',
    fn: listRules,
    args: (n) => `[{"orderBy": {"column": "votes", "direction": ${j(n)}}}]`,
    status: 400,
    message: () => 'Invalid query: "orderBy.direction" must be "asc" or "desc"',
  },
  {
    field: 'orderBy key',
    fn: listRules,
    args: (n) => `[{"orderBy": {"column": "votes", ${j(n)}: "asc"}}]`,
    status: 400,
    message: (n) => `Invalid query: unknown key ${j(n)} in "orderBy"`,
  },
  {
    field: 'query key',
    fn: listRules,
    args: (n) => `[{${j(n)}: {}}]`,
    status: 400,
    message: (n) => `Invalid query: unknown key ${j(n)} (allowed: where, orderBy, limit, cursor)`,
  },
  {
    field: 'insert field name',
    fn: addRule,
    args: (n) => `[{"text": "a", "votes": 1, "kind": "must", ${j(n)}: "x"}]`,
    status: 422,
    message: (n) => `Invalid arguments: args[0].${n}: unknown field`,
  },
  {
    field: 'scoped insert field name',
    fn: addNote,
    args: (n) => `[{"body": "a", ${j(n)}: "x"}]`,
    status: 422,
    message: (n) => `Invalid arguments: args[0].${n}: unknown field`,
  },
  {
    field: 'patch field name',
    fn: patchRule,
    args: (n) => `[${j(ID)}, {${j(n)}: "x"}]`,
    status: 422,
    message: (n) => `Invalid arguments: args[1].${n}: unknown field`,
  },
];

describe.each(NAME_FIELDS)('$field refuses hostile names', ({ fn, args, status, message }) => {
  it.each(NAMES)('$name', ({ value }) => {
    const error = refusal(() => fn.prepare(parseArgs(args(value)), alice));
    expect(error.status).toBe(status);
    expect(error.message.startsWith(message(value)), error.message.slice(0, 300)).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------------
// Values where a string does not fit: refused, naming the field.

interface RefusingField {
  field: string;
  fn: CompiledFunction;
  args: (value: string) => string;
  status: 400 | 422;
  message: (value: string) => string;
}

const COMPARISONS = ['eq', 'neq', 'lt', 'lte', 'gt', 'gte'] as const;
const CURSOR_REFUSED = 'Invalid query: "cursor" is not a cursor this function returned';

const REFUSING_FIELDS: RefusingField[] = [
  ...COMPARISONS.map((op) => ({
    field: `where.votes.${op}`,
    fn: listRules,
    args: (s: string) => `[{"where": {"votes": {"${op}": ${j(s)}}}}]`,
    status: 422 as const,
    message: (s: string) => `Invalid arguments: args[0].where.votes.${op}: expected integer, got ${shown(s)}`,
  })),
  {
    field: 'where.votes.in item',
    fn: listRules,
    args: (s) => `[{"where": {"votes": {"in": [1, ${j(s)}]}}}]`,
    status: 422,
    message: (s) => `Invalid arguments: args[0].where.votes.in[1]: expected integer, got ${shown(s)}`,
  },
  {
    field: 'where.text.in as a string',
    fn: listRules,
    args: (s) => `[{"where": {"text": {"in": ${j(s)}}}}]`,
    status: 422,
    message: () => 'Invalid arguments: args[0].where.text.in: expected an array of at most 1000 values',
  },
  {
    field: 'where.kind.eq',
    fn: listRules,
    args: (s) => `[{"where": {"kind": {"eq": ${j(s)}}}}]`,
    status: 422,
    message: (s) => `Invalid arguments: args[0].where.kind.eq: expected one of "must" | "should", got ${shown(s)}`,
  },
  {
    field: 'where.id.eq',
    fn: listRules,
    args: (s) => `[{"where": {"id": {"eq": ${j(s)}}}}]`,
    status: 422,
    message: (s) => `Invalid arguments: args[0].where.id.eq: expected id of a "rules" row, got ${shown(s)}`,
  },
  {
    field: 'where.id.in item',
    fn: listRules,
    args: (s) => `[{"where": {"id": {"in": [${j(ID)}, ${j(s)}]}}}]`,
    status: 422,
    message: (s) => `Invalid arguments: args[0].where.id.in[1]: expected id of a "rules" row, got ${shown(s)}`,
  },
  {
    field: 'where.tags.isNull',
    fn: listRules,
    args: (s) => `[{"where": {"tags": {"isNull": ${j(s)}}}}]`,
    status: 422,
    message: () => 'Invalid arguments: args[0].where.tags.isNull: expected boolean, got string',
  },
  {
    field: 'where.tags.eq (JSON column)',
    fn: listRules,
    args: (s) => `[{"where": {"tags": {"eq": ${j(s)}}}}]`,
    status: 400,
    message: () => 'Invalid query: column "tags" holds JSON: only "isNull" can filter it',
  },
  {
    field: 'where.votes.like',
    fn: listRules,
    args: (s) => `[{"where": {"votes": {"like": ${j(s)}}}}]`,
    status: 400,
    message: () => 'Invalid query: "like" only applies to text columns, not "votes"',
  },
  {
    field: 'where.ownerId.eq (scope column)',
    fn: listNotes,
    args: (s) => `[{"where": {"ownerId": {"eq": ${j(s)}}}}]`,
    status: 400,
    message: () => 'Invalid query: column "ownerId" cannot be filtered by the client',
  },
  {
    field: 'where as a string',
    fn: listRules,
    args: (s) => `[{"where": ${j(s)}}]`,
    status: 400,
    message: () => 'Invalid query: "where" must be an object',
  },
  {
    field: 'where.text as a string',
    fn: listRules,
    args: (s) => `[{"where": {"text": ${j(s)}}}]`,
    status: 400,
    message: () => 'Invalid query: "where.text" must be an object of operators',
  },
  {
    field: 'orderBy as a string',
    fn: listRules,
    args: (s) => `[{"orderBy": ${j(s)}}]`,
    status: 400,
    message: () => 'Invalid query: "orderBy" must be {',
  },
  {
    field: 'limit',
    fn: listRules,
    args: (s) => `[{"limit": ${j(s)}}]`,
    status: 422,
    message: (s) => `Invalid arguments: args[0].limit: expected an integer from 1 to 1000, got ${j(s)}`,
  },
  { field: 'cursor', fn: listRules, args: (s) => `[{"cursor": ${j(s)}}]`, status: 400, message: () => CURSOR_REFUSED },
  {
    field: 'cursor value on an int order',
    fn: listRules,
    args: (s) => `[{"orderBy": {"column": "votes"}, "cursor": ${j(cursorOf(s, ID))}}]`,
    status: 400,
    message: () => CURSOR_REFUSED,
  },
  {
    field: 'cursor id',
    fn: listRules,
    args: (s) => `[{"orderBy": {"column": "votes"}, "cursor": ${j(cursorOf(7, s))}}]`,
    status: 400,
    message: () => CURSOR_REFUSED,
  },
  {
    field: 'queryRows argument as a string',
    fn: listRules,
    args: (s) => `[${j(s)}]`,
    status: 400,
    message: () => 'Invalid query: the argument must be an object',
  },
  {
    field: 'insert votes',
    fn: addRule,
    args: (s) => `[{"text": "a", "votes": ${j(s)}, "kind": "must"}]`,
    status: 422,
    message: (s) => `Invalid arguments: args[0].votes: expected integer, got ${shown(s)}`,
  },
  {
    field: 'insert kind',
    fn: addRule,
    args: (s) => `[{"text": "a", "votes": 1, "kind": ${j(s)}}]`,
    status: 422,
    message: (s) => `Invalid arguments: args[0].kind: expected one of "must" | "should", got ${shown(s)}`,
  },
  {
    field: 'insert id',
    fn: addRule,
    args: (s) => `[{"text": "a", "votes": 1, "kind": "must", "id": ${j(s)}}]`,
    status: 422,
    message: () => 'Invalid arguments: args[0].id: is set by the server',
  },
  {
    field: 'insert createdAt',
    fn: addRule,
    args: (s) => `[{"text": "a", "votes": 1, "kind": "must", "createdAt": ${j(s)}}]`,
    status: 422,
    message: () => 'Invalid arguments: args[0].createdAt: is set by the server',
  },
  {
    field: 'insert scope column',
    fn: addNote,
    args: (s) => `[{"body": "a", "ownerId": ${j(s)}}]`,
    status: 422,
    message: () => 'Invalid arguments: args[0].ownerId: is set by the server',
  },
  {
    field: 'insert values as a string',
    fn: addRule,
    args: (s) => `[${j(s)}]`,
    status: 422,
    message: () => 'Invalid arguments: args[0]: expected an object of "rules" fields',
  },
  {
    field: 'patch id',
    fn: patchRule,
    args: (s) => `[${j(s)}, {"votes": 1}]`,
    status: 422,
    message: (s) => `Invalid arguments: args[0]: expected id of a "rules" row, got ${shown(s)}`,
  },
  {
    field: 'patch votes',
    fn: patchRule,
    args: (s) => `[${j(ID)}, {"votes": ${j(s)}}]`,
    status: 422,
    message: (s) => `Invalid arguments: args[1].votes: expected integer, got ${shown(s)}`,
  },
  {
    field: 'patch id field',
    fn: patchRule,
    args: (s) => `[${j(ID)}, {"id": ${j(s)}}]`,
    status: 422,
    message: () => 'Invalid arguments: args[1].id: is set by the server',
  },
  {
    field: 'patch scope column',
    fn: patchNote,
    args: (s) => `[${j(ID)}, {"ownerId": ${j(s)}}]`,
    status: 422,
    message: () => 'Invalid arguments: args[1].ownerId: is set by the server',
  },
  {
    field: 'patch changes as a string',
    fn: patchRule,
    args: (s) => `[${j(ID)}, ${j(s)}]`,
    status: 422,
    message: () => 'Invalid arguments: args[1]: expected an object of "rules" fields',
  },
  {
    field: 'delete id',
    fn: deleteRule,
    args: (s) => `[${j(s)}]`,
    status: 422,
    message: (s) => `Invalid arguments: args[0]: expected id of a "rules" row, got ${shown(s)}`,
  },
];

describe.each(REFUSING_FIELDS)('$field refuses strings', ({ fn, args, status, message }) => {
  it.each(PAYLOADS)('$name', ({ value }) => {
    const error = refusal(() => fn.prepare(parseArgs(args(value)), alice));
    expect(error.status).toBe(status);
    expect(error.message.startsWith(message(value)), error.message.slice(0, 300)).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------------
// Values where a string fits: bound as $n, the SQL text identical to that of a harmless string.

interface BindingField {
  field: string;
  fn: CompiledFunction;
  args: (value: string) => string;
  /** Index in `values` the string is bound at, and what is bound there. */
  at: number;
  bound: (value: string) => unknown;
}

const asIs = (s: string) => s;
const BINDING_FIELDS: BindingField[] = [
  ...COMPARISONS.map((op) => ({
    field: `where.text.${op}`,
    fn: listRules,
    args: (s: string) => `[{"where": {"text": {"${op}": ${j(s)}}}}]`,
    at: 0,
    bound: asIs,
  })),
  {
    field: 'where.text.like',
    fn: listRules,
    args: (s) => `[{"where": {"text": {"like": ${j(s)}}}}]`,
    at: 0,
    bound: asIs,
  },
  {
    field: 'where.kind.like',
    fn: listRules,
    args: (s) => `[{"where": {"kind": {"like": ${j(s)}}}}]`,
    at: 0,
    bound: asIs,
  },
  {
    field: 'where.text.in',
    fn: listRules,
    args: (s) => `[{"where": {"text": {"in": [${j(s)}, "x"]}}}]`,
    at: 0,
    bound: (s) => [s, 'x'],
  },
  {
    field: 'where.body.eq of a scoped query',
    fn: listNotes,
    args: (s) => `[{"where": {"body": {"eq": ${j(s)}}}}]`,
    at: 1,
    bound: asIs,
  },
  {
    field: 'insert text',
    fn: addRule,
    args: (s) => `[{"text": ${j(s)}, "votes": 1, "kind": "must"}]`,
    at: 0,
    bound: asIs,
  },
  {
    field: 'insert tags (a JSON string)',
    fn: addRule,
    args: (s) => `[{"text": "a", "votes": 1, "kind": "must", "tags": ${j(s)}}]`,
    at: 3,
    bound: j,
  },
  {
    field: 'insert tags (an object keyed and valued by it)',
    fn: addRule,
    args: (s) => `[{"text": "a", "votes": 1, "kind": "must", "tags": {${j(s)}: [${j(s)}]}}]`,
    at: 3,
    bound: (s) => `{${j(s)}:[${j(s)}]}`,
  },
  { field: 'scoped insert body', fn: addNote, args: (s) => `[{"body": ${j(s)}}]`, at: 0, bound: asIs },
  { field: 'patch text', fn: patchRule, args: (s) => `[${j(ID)}, {"text": ${j(s)}}]`, at: 0, bound: asIs },
  {
    field: 'patch tags',
    fn: patchRule,
    args: (s) => `[${j(ID)}, {"tags": {"nested": [${j(s)}]}}]`,
    at: 0,
    bound: (s) => `{"nested":[${j(s)}]}`,
  },
  { field: 'scoped patch body', fn: patchNote, args: (s) => `[${j(ID)}, {"body": ${j(s)}}]`, at: 0, bound: asIs },
];

describe.each(BINDING_FIELDS)('$field binds strings as values only', ({ fn, args, at, bound }) => {
  const harmless = fn.prepare(parseArgs(args('harmless')), alice);

  it.each(STORABLE)('$name', ({ value }) => {
    const statement = fn.prepare(parseArgs(args(value)), alice);
    expect(statement.text).toBe(harmless.text);
    expectSafe(statement);
    const expected = [...harmless.values];
    expected[at] = bound(value);
    expect(statement.values).toStrictEqual(expected);
    // `"` alone is part of every quoted identifier; everything else must not show up in the text.
    if (!harmless.text.includes(value)) expect(statement.text.includes(value)).toBe(false);
  });
});

describe('cursors', () => {
  const textOrder = { orderBy: { column: 'text', direction: 'asc' } };

  it.each(STORABLE.filter((p) => cursorOf(p.value, ID).length <= 2048))(
    'a cursor on a text order binds $name as a value',
    ({ value }) => {
      const statement = listRules.prepare([{ ...textOrder, cursor: cursorOf(value, ID) }], alice);
      expect(statement.text).toBe(
        'SELECT * FROM "ext_feature_rules"."rules" WHERE ("text", "id") > ($1, $2) ORDER BY "text" ASC, "id" ASC LIMIT $3',
      );
      expect(statement.values).toStrictEqual([value, ID, 101]);
      expectSafe(statement);
    },
  );

  it.each([
    ['garbage', 'not a cursor'],
    ['base64 junk', '!!!!'],
    ['empty', ''],
    ['a truncated cursor', cursorOf(7, ID).slice(0, 20)],
    ['too long, though valid-looking', cursorOf('x'.repeat(3000), ID)],
    ['an object', rawCursor(`{"value": 7, "id": ${j(ID)}}`)],
    ['an object with __proto__', rawCursor(`{"__proto__": [7, ${j(ID)}]}`)],
    ['a one-element array', rawCursor('[7]')],
    ['a three-element array', rawCursor(`[7, ${j(ID)}, "; DROP TABLE rules; --"]`)],
    ['a string', rawCursor(j(`[7, ${j(ID)}]`))],
    ['null', rawCursor('null')],
    ['JSON with SQL after it', rawCursor(`[7, ${j(ID)}]; DROP TABLE rules; --`)],
    ['SQL in the value', cursorOf('7; DROP TABLE rules; --', ID)],
    ['an object in the value', cursorOf({ $gt: 0 }, ID)],
    ['an array in the value', cursorOf([7], ID)],
    ['an unsafe integer in the value', rawCursor(`[9007199254740993, ${j(ID)}]`)],
    ['SQL in the id', cursorOf(7, "' OR 1=1 --")],
    ['SQL after a valid id', cursorOf(7, `${ID}' OR '1'='1`)],
    ['a number as the id', cursorOf(7, 123)],
    ['an object as the id', cursorOf(7, { toString: ID })],
  ])('400 for %s', (_, cursor) => {
    const error = refusal(() =>
      listRules.prepare([{ orderBy: { column: 'votes', direction: 'desc' }, cursor }], alice),
    );
    expect([error.status, error.message]).toEqual([400, CURSOR_REFUSED]);
  });

  it.each([
    ['an array', ['x']],
    ['an object', { value: 7, id: ID }],
    ['a number', 7],
    ['null', null],
  ])('400 for a cursor that is %s', (_, cursor) => {
    const error = refusal(() => listRules.prepare([{ cursor }], alice));
    expect([error.status, error.message]).toEqual([400, CURSOR_REFUSED]);
  });
});

// ---------------------------------------------------------------------------------------------
// Shapes: objects and arrays where a scalar belongs.

describe('nested objects and arrays where scalars are expected', () => {
  it.each([
    [
      'where.text.eq: an operator object',
      listRules,
      `[{"where": {"text": {"eq": {"$ne": null}}}}]`,
      422,
      'Invalid arguments: args[0].where.text.eq: expected string, got object',
    ],
    [
      'where.text.eq: an array',
      listRules,
      `[{"where": {"text": {"eq": ["a", "b"]}}}]`,
      422,
      'Invalid arguments: args[0].where.text.eq: expected string, got array',
    ],
    [
      'where.votes.gt: an object',
      listRules,
      `[{"where": {"votes": {"gt": {"valueOf": 1}}}}]`,
      422,
      'Invalid arguments: args[0].where.votes.gt: expected integer, got object',
    ],
    [
      'where.text.like: a regex object',
      listRules,
      `[{"where": {"text": {"like": {"$regex": ".*"}}}}]`,
      422,
      'Invalid arguments: args[0].where.text.like: expected string, got object',
    ],
    [
      'where.text.in: nested arrays',
      listRules,
      `[{"where": {"text": {"in": [["a"]]}}}]`,
      422,
      'Invalid arguments: args[0].where.text.in[0]: expected string, got array',
    ],
    [
      'where.text.in: objects',
      listRules,
      `[{"where": {"text": {"in": [{"toString": "x"}]}}}]`,
      422,
      'Invalid arguments: args[0].where.text.in[0]: expected string, got object',
    ],
    [
      'where.text.in: an object',
      listRules,
      `[{"where": {"text": {"in": {"0": "a", "length": 1}}}}]`,
      422,
      'Invalid arguments: args[0].where.text.in: expected an array of at most 1000 values',
    ],
    [
      'where.tags.isNull: an object',
      listRules,
      `[{"where": {"tags": {"isNull": {}}}}]`,
      422,
      'Invalid arguments: args[0].where.tags.isNull: expected boolean, got object',
    ],
    [
      'where.tags.isNull: a string',
      listRules,
      `[{"where": {"tags": {"isNull": "true"}}}]`,
      422,
      'Invalid arguments: args[0].where.tags.isNull: expected boolean, got string',
    ],
    [
      'where.text: an array of operators',
      listRules,
      `[{"where": {"text": [{"eq": "a"}]}}]`,
      400,
      'Invalid query: "where.text" must be an object of operators',
    ],
    [
      'where: an array of conditions',
      listRules,
      `[{"where": [{"text": {"eq": "a"}}]}]`,
      400,
      'Invalid query: "where" must be an object',
    ],
    [
      'where: an or-tree',
      listRules,
      `[{"where": {"or": [{"text": {"eq": "a"}}, {"votes": {"gt": 1}}]}}]`,
      400,
      'Invalid query: unknown column "or" in "where"',
    ],
    [
      'where: __proto__ holding a column',
      listRules,
      `[{"where": {"__proto__": {"text": {"eq": "a"}}}}]`,
      400,
      'Invalid query: unknown column "__proto__" in "where"',
    ],
    ['orderBy: an array', listRules, `[{"orderBy": [{"column": "votes"}]}]`, 400, 'Invalid query: "orderBy" must be {'],
    [
      'orderBy.column: an array',
      listRules,
      `[{"orderBy": {"column": ["votes"]}}]`,
      400,
      'Invalid query: "orderBy" names unknown column ["votes"]',
    ],
    [
      'orderBy.column: an object',
      listRules,
      `[{"orderBy": {"column": {"toString": "votes"}}}]`,
      400,
      'Invalid query: "orderBy" names unknown column {"toString":"votes"}',
    ],
    [
      'orderBy.direction: an array',
      listRules,
      `[{"orderBy": {"column": "votes", "direction": ["asc"]}}]`,
      400,
      'Invalid query: "orderBy.direction" must be "asc" or "desc"',
    ],
    [
      'limit: an array',
      listRules,
      `[{"limit": [10]}]`,
      422,
      'Invalid arguments: args[0].limit: expected an integer from 1 to 1000, got [10]',
    ],
    [
      'limit: an object',
      listRules,
      `[{"limit": {"$gt": 0}}]`,
      422,
      'Invalid arguments: args[0].limit: expected an integer from 1 to 1000, got {"$gt":0}',
    ],
    [
      'limit: a huge number',
      listRules,
      `[{"limit": 1e308}]`,
      422,
      'Invalid arguments: args[0].limit: expected an integer from 1 to 1000, got 1e+308',
    ],
    [
      'queryRows: two arguments',
      listRules,
      `[{}, "; DROP TABLE rules; --"]`,
      400,
      'Invalid query: queryRows takes one argument',
    ],
    ['queryRows: an array argument', listRules, `[["where"]]`, 400, 'Invalid query: the argument must be an object'],
    [
      'insert text: an object',
      addRule,
      `[{"text": {"$concat": "x"}, "votes": 1, "kind": "must"}]`,
      422,
      'Invalid arguments: args[0].text: expected string, got object',
    ],
    [
      'insert votes: an array',
      addRule,
      `[{"text": "a", "votes": [1], "kind": "must"}]`,
      422,
      'Invalid arguments: args[0].votes: expected integer, got array',
    ],
    [
      'insert: an array of values',
      addRule,
      `[[{"text": "a", "votes": 1, "kind": "must"}]]`,
      422,
      'Invalid arguments: args[0]: expected an object of "rules" fields',
    ],
    [
      'insert: a second argument',
      addRule,
      `[{"text": "a", "votes": 1, "kind": "must"}, {"ownerId": "bob"}]`,
      422,
      'Invalid arguments: args: expected [values], got 2 arguments',
    ],
    [
      'insert: __proto__ holding the scope column',
      addNote,
      `[{"body": "a", "__proto__": {"ownerId": "bob"}}]`,
      422,
      'Invalid arguments: args[0].__proto__: unknown field',
    ],
    [
      'insert: constructor holding a column',
      addRule,
      `[{"text": "a", "votes": 1, "kind": "must", "constructor": {"prototype": {"text": "x"}}}]`,
      422,
      'Invalid arguments: args[0].constructor: unknown field',
    ],
    [
      'patch id: an operator object',
      patchRule,
      `[{"$ne": null}, {"votes": 1}]`,
      422,
      'Invalid arguments: args[0]: expected id of a "rules" row, got object',
    ],
    [
      'patch id: an array',
      patchRule,
      `[[${j(ID)}], {"votes": 1}]`,
      422,
      'Invalid arguments: args[0]: expected id of a "rules" row, got array',
    ],
    [
      'patch changes: an array of pairs',
      patchRule,
      `[${j(ID)}, [["text", "x"]]]`,
      422,
      'Invalid arguments: args[1]: expected an object of "rules" fields',
    ],
    [
      'patch text: an object',
      patchRule,
      `[${j(ID)}, {"text": {"$set": "x"}}]`,
      422,
      'Invalid arguments: args[1].text: expected string, got object',
    ],
    [
      'patch: __proto__ holding the scope column',
      patchNote,
      `[${j(ID)}, {"__proto__": {"ownerId": "bob"}}]`,
      422,
      'Invalid arguments: args[1].__proto__: unknown field',
    ],
    [
      'delete id: an operator object',
      deleteRule,
      `[{"$ne": null}]`,
      422,
      'Invalid arguments: args[0]: expected id of a "rules" row, got object',
    ],
    [
      'delete id: an array',
      deleteRule,
      `[[${j(ID)}]]`,
      422,
      'Invalid arguments: args[0]: expected id of a "rules" row, got array',
    ],
    ['delete id: a number', deleteRule, `[1]`, 422, 'Invalid arguments: args[0]: expected id of a "rules" row, got 1'],
    [
      'delete: a second argument',
      deleteRule,
      `[${j(ID)}, "; DROP TABLE rules; --"]`,
      422,
      'Invalid arguments: args: expected [id], got 2 arguments',
    ],
  ] as [string, CompiledFunction, string, number, string][])('%s', (_, fn, args, status, message) => {
    const error = refusal(() => fn.prepare(parseArgs(args), alice));
    expect(error.status).toBe(status);
    expect(error.message.startsWith(message), error.message).toBe(true);
  });

  it('a JSON value holding __proto__ is stored as data and pollutes nothing', () => {
    const statement = addRule.prepare(
      parseArgs(
        `[{"text": "a", "votes": 1, "kind": "must", "tags": {"__proto__": {"polluted": true}, "constructor": {"prototype": {"polluted": true}}}}]`,
      ),
      alice,
    );
    expect(statement.values[3]).toBe('{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}}}');
    expectSafe(statement);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('polluted');
  });

  it('a scoped query is bound to the caller whatever the client sends', () => {
    for (const args of [
      `[{"where": {"body": {"eq": "a"}}, "__proto__": {"where": {"ownerId": {"eq": "bob"}}}}]`,
      `[{"where": {"body": {"eq": "a"}, "__proto__": {"ownerId": {"eq": "bob"}}}}]`,
    ]) {
      expect(refusal(() => listNotes.prepare(parseArgs(args), alice)).status).toBe(400);
    }
    const statement = listNotes.prepare(parseArgs(`[{"where": {"body": {"eq": "a"}}}]`), alice);
    expect(statement.values).toEqual(['alice', 'a', 101]);
  });
});

// ---------------------------------------------------------------------------------------------
// Values PostgreSQL cannot take must be refused as 422, not fail inside the database (500).

describe('values PostgreSQL would reject are refused before the database', () => {
  const NUL = PAYLOADS.filter((p) => p.postgresRejects);

  it.each(NUL)('$name in a text or JSON value is 422 naming the field', ({ value }) => {
    const fields: [string, () => unknown, string][] = [
      ['where.text.eq', () => listRules.prepare([{ where: { text: { eq: value } } }], alice), 'args[0].where.text.eq'],
      [
        'where.text.like',
        () => listRules.prepare([{ where: { text: { like: value } } }], alice),
        'args[0].where.text.like',
      ],
      [
        'where.text.in',
        () => listRules.prepare([{ where: { text: { in: [value] } } }], alice),
        'args[0].where.text.in',
      ],
      ['insert text', () => addRule.prepare([{ text: value, votes: 1, kind: 'must' }], alice), 'args[0].text'],
      [
        'insert tags',
        () => addRule.prepare([{ text: 'a', votes: 1, kind: 'must', tags: { k: value } }], alice),
        'args[0].tags',
      ],
      ['patch text', () => patchRule.prepare([ID, { text: value }], alice), 'args[1].text'],
    ];
    const outcomes = fields.map(([field, prepare, path]) => {
      try {
        prepare();
        return `${field}: prepared`;
      } catch (error) {
        const e = error as RequestError;
        return e.status === 422 && e.message.includes(path) ? `${field}: 422` : `${field}: ${e.status} ${e.message}`;
      }
    });
    expect(outcomes).toEqual(fields.map(([field]) => `${field}: 422`));
  });

  it('a lone surrogate in a JSON value is 422 (jsonb rejects the \\ud800 escape)', () => {
    const error = refusal(() => addRule.prepare([{ text: 'a', votes: 1, kind: 'must', tags: ['\uD800'] }], alice));
    expect(error.status).toBe(422);
    expect(error.message).toContain('args[0].tags');
  });

  it('a createdAt filter that is not a timestamp is 422', () => {
    const error = refusal(() =>
      listRules.prepare([{ where: { createdAt: { gt: "'; DROP TABLE rules; --" } } }], alice),
    );
    expect(error.status).toBe(422);
    expect(error.message).toContain('args[0].where.createdAt.gt');
  });

  it('a cursor on the default (createdAt) order whose value is not a timestamp is 400', () => {
    const error = refusal(() => listRules.prepare([{ cursor: cursorOf("'; DROP TABLE rules; --", ID) }], alice));
    expect([error.status, error.message]).toEqual([400, CURSOR_REFUSED]);
  });

  it('a cursor whose id is 36 characters but not a UUID is 400', () => {
    for (const id of ['-'.repeat(36), 'f'.repeat(36), `${'0'.repeat(32)}----`]) {
      const error = refusal(() =>
        listRules.prepare([{ orderBy: { column: 'votes' }, cursor: cursorOf(7, id) }], alice),
      );
      expect([id, error.status, error.message]).toEqual([id, 400, CURSOR_REFUSED]);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// The same statements against a real database.

describe('against PostgreSQL (in-memory PGlite)', () => {
  let client: SqlClient;
  const run = (statement: Statement) => client.transaction(model.role, (q) => q(statement.text, statement.values));
  const call = async (fn: CompiledFunction, args: unknown[], ctx = alice) => {
    const statement = fn.prepare(args, ctx);
    expectSafe(statement);
    return fn.result(await run(statement), args);
  };
  type Page = { rows: Record<string, unknown>[]; nextCursor: string | null };

  beforeAll(async () => {
    client = await openPglite(null);
    await migrate(client, model);
  }, 60_000);

  afterAll(async () => {
    await client?.close();
  });

  it('runs compiled statements with injection-looking strings, which round-trip byte-for-byte', async () => {
    const ids = new Map<string, string>();
    for (const [i, { value }] of STORABLE.entries()) {
      const row = (await call(
        addRule,
        parseArgs(`[{"text": ${j(value)}, "votes": ${i}, "kind": "must", "tags": {${j(value)}: [${j(value)}]}}]`),
      )) as Record<string, unknown>;
      expect(row.text === value, `insert ${j(value).slice(0, 40)}`).toBe(true);
      expect(JSON.stringify(row.tags) === `{${j(value)}:[${j(value)}]}`, `tags ${j(value).slice(0, 40)}`).toBe(true);
      ids.set(value, row.id as string);
    }

    for (const { value } of STORABLE) {
      const page = (await call(listRules, [{ where: { text: { eq: value } } }])) as Page;
      expect(page.rows.map((r) => [r.id, r.text === value])).toEqual([[ids.get(value), true]]);
      await call(listRules, [
        {
          where: { text: { like: value }, kind: { in: ['must'] } },
          orderBy: { column: 'votes', direction: 'asc' },
          limit: 5,
        },
      ]);
    }

    const all = (await call(listRules, [
      { where: { text: { in: STORABLE.map((p) => p.value) } }, limit: 1000 },
    ])) as Page;
    expect(all.rows).toHaveLength(STORABLE.length);
    const dropping = (await call(listRules, [{ where: { text: { like: '%DROP TABLE%' } }, limit: 1000 }])) as Page;
    expect(dropping.rows.map((r) => r.text).sort()).toEqual(
      STORABLE.map((p) => p.value)
        .filter((s) => s.includes('DROP TABLE'))
        .sort(),
    );

    // Keyset paging, three rows a page, visits every row once: by votes, and by text (whose cursors carry the strings).
    const pageThrough = async (orderBy: object, where: object = {}) => {
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const page = (await call(listRules, [{ where, orderBy, limit: 3, ...(cursor ? { cursor } : {}) }])) as Page;
        seen.push(...page.rows.map((r) => r.id as string));
        cursor = page.nextCursor;
      } while (cursor && seen.length <= STORABLE.length);
      return seen;
    };
    expect((await pageThrough({ column: 'votes', direction: 'desc' })).sort()).toEqual([...ids.values()].sort());
    // (The huge text is left out: its cursor would be longer than a cursor may be.)
    const byText = await pageThrough({ column: 'text', direction: 'asc' }, { text: { neq: HUGE } });
    expect(byText.sort()).toEqual(
      [...ids.entries()]
        .filter(([text]) => text !== HUGE)
        .map(([, id]) => id)
        .sort(),
    );

    for (const { value } of STORABLE) {
      const row = (await call(
        patchRule,
        parseArgs(`[${j(ids.get(value))}, {"text": ${j(`${value}!`)}, "tags": ${j(value)}}]`),
      )) as Record<string, unknown>;
      expect([row.text === `${value}!`, row.tags === value]).toEqual([true, true]);
    }
    const gone = ids.get("'; DROP TABLE rules; --")!;
    expect(await call(deleteRule, [gone])).toEqual({ deleted: gone });
    await expect(call(deleteRule, [gone])).rejects.toMatchObject({ status: 404 });
    await expect(call(patchRule, [gone, { votes: 1 }])).rejects.toMatchObject({ status: 404 });

    // A caller whose identity looks like SQL is bound as a value too, and sees only its own rows.
    const mallory = makeCtx("'; DROP TABLE notes; --");
    await call(addNote, [{ body: "') OR 1=1 --" }], mallory);
    await call(addNote, [{ body: 'mine' }], alice);
    const malloryNotes = (await call(listNotes, [{}], mallory)) as Page;
    expect(malloryNotes.rows.map((r) => [r.body, r.ownerId])).toEqual([["') OR 1=1 --", "'; DROP TABLE notes; --"]]);
    const aliceNotes = (await call(listNotes, [{ where: { body: { eq: "') OR 1=1 --" } } }], alice)) as Page;
    expect(aliceNotes.rows).toEqual([]);

    const tables = await client.adminTransaction((q) =>
      q(
        'SELECT table_name, (SELECT count(*) FROM "ext_feature_rules"."rules") AS rules FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name',
        [model.schema],
      ),
    );
    expect(tables.map((t) => t.table_name)).toEqual(['notes', 'rules']);
    expect(tables[0]?.rules).toBe(STORABLE.length - 1);
  }, 60_000);
});
