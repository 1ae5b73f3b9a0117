import { describe, expect, it } from 'vitest';
import type { QueryRowsOptions, WriteRowOptions } from '../../runtime/declarative.js';
import { RequestError } from '../../runtime/request-error.js';
import { defineSchema, defineTable } from '../../runtime/schema.js';
import type { ServerContext } from '../../runtime/server.js';
import { v } from '../../runtime/validators.js';
import { UsageError } from '../common/usage-error.js';
import { compileQueryRows } from './compile-query.js';
import { compileDeleteRow, compileInsertRow, compilePatchRow } from './compile-write.js';
import { modelSchema, type TableModel } from './table-model.js';

import { model, notes, rules } from './__fixtures__/rules-schema.js';

const RULES = '"ext_feature_rules"."rules"';
const NOTES = '"ext_feature_rules"."notes"';
const NEWEST_FIRST = 'ORDER BY "createdAt" DESC, "id" DESC';
const RULE_COLUMNS = 'id, createdAt, text, votes, kind, tags';
const OPERATOR_LIST = 'eq, neq, lt, lte, gt, gte, in, isNull, like';
const ID = '0f8fad5b-d9cb-469f-a165-70867728950e';
const ID2 = '7c9e6679-7425-40de-944b-e07fc1f90ae7';
const ID3 = 'a3bb189e-8bf9-3888-9912-ace4e6543002';

function makeCtx(identity: { userId?: string | null; tenantId?: string | null } = {}): ServerContext {
  const userId = identity.userId === undefined ? 'alice' : identity.userId;
  return {
    requestId: 'req-1',
    featureId: 'feature-rules',
    userRoles: [],
    claims: userId ? { sub: userId } : null,
    visibility: { tenantId: identity.tenantId ?? null, featureToggles: [] },
    auth: { userId },
    db: {} as ServerContext['db'],
    secrets: {},
    signal: new AbortController().signal,
  };
}
const alice = makeCtx();
const anonymous = makeCtx({ userId: null });

/** The status and message of the RequestError `fn` throws. */
function httpError(fn: () => unknown): { status: number; message: string } {
  try {
    fn();
  } catch (error) {
    if (!(error instanceof RequestError)) throw error;
    return { status: error.status, message: error.message };
  }
  throw new Error('expected a RequestError, but nothing was thrown');
}

/** The message of the UsageError `fn` throws. */
function usageError(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    return error.message;
  }
  throw new Error('expected a UsageError, but nothing was thrown');
}

const listRules = compileQueryRows(rules, {}, 'listRules');
const query = (input?: unknown, ctx = alice) => listRules.prepare(input === undefined ? [] : [input], ctx);
const cursorOf = (value: unknown, id: string) => Buffer.from(JSON.stringify([value, id])).toString('base64url');

function fakeRule(id: string, votes: number, text = `rule ${votes}`): Record<string, unknown> {
  return { id, createdAt: new Date(Date.UTC(2024, 0, votes, 12, 0, 0, 123)), text, votes, kind: 'must', tags: null };
}

describe('modelSchema', () => {
  it('quotes every identifier and names the schema after the feature', () => {
    expect(model.schema).toBe('ext_feature_rules');
    expect(model.role).toBe('ext_feature_rules');
    expect(rules.sql).toBe(RULES);
    expect([...rules.columns.values()].map((c) => [c.name, c.sql, c.sqlType, c.nullable, c.json, c.system])).toEqual([
      ['id', '"id"', 'uuid', false, false, true],
      ['createdAt', '"createdAt"', 'timestamptz', false, false, true],
      ['text', '"text"', 'text', false, false, false],
      ['votes', '"votes"', 'bigint', false, false, false],
      ['kind', '"kind"', 'text', false, false, false],
      ['tags', '"tags"', 'jsonb', true, true, false],
    ]);
    expect(rules.indexes).toEqual([{ name: 'by_votes', columns: ['votes'] }]);
  });

  it.each([
    [
      'a table name that is not an identifier',
      { 'my-rules': defineTable({ a: v.string() }) },
      'server/schema.ts: table name "my-rules" must be letters, digits and _, starting with a letter',
    ],
    [
      'a column name that is not an identifier',
      { rules: defineTable({ 'text"; --': v.string() }) },
      'server/schema.ts: column "rules.text"; --" must be letters, digits and _, starting with a letter',
    ],
    [
      'a column named like a system column',
      { rules: defineTable({ createdAt: v.string() }) },
      'server/schema.ts: column "rules.createdAt" is reserved: every row already has id and createdAt',
    ],
    [
      'a column that is not a validator',
      { rules: defineTable({ text: 'string' as never }) },
      'server/schema.ts: column "rules.text" must be a v.* validator',
    ],
    [
      'an index on an unknown column',
      { rules: defineTable({ text: v.string() }).index('by_x', ['x' as never]) },
      'server/schema.ts: index "by_x" of "rules" names unknown column "x"',
    ],
    [
      'an index name that is not an identifier',
      { rules: defineTable({ text: v.string() }).index('by text', ['text']) },
      'server/schema.ts: index name "by text" must be letters, digits and _',
    ],
  ])('rejects %s', (_, tables, message) => {
    expect(usageError(() => modelSchema('feature-rules', defineSchema(tables)))).toBe(message);
  });
});

describe('compileQueryRows', () => {
  it('by default orders newest first and asks for one row more than the default page of 100', () => {
    const expected = { text: `SELECT * FROM ${RULES} ${NEWEST_FIRST} LIMIT $1`, values: [101] };
    expect(query()).toEqual(expected);
    expect(query({})).toEqual(expected);
    expect(listRules.prepare([null], alice)).toEqual(expected);
    expect(listRules.kind).toBe('queryRows');
    expect(listRules.readOnly).toBe(true);
  });

  describe('where', () => {
    it.each([
      ['eq', { text: { eq: 'a' } }, '"text" = $1', ['a']],
      ['neq', { votes: { neq: 3 } }, '"votes" <> $1', [3]],
      ['lt', { votes: { lt: 3 } }, '"votes" < $1', [3]],
      ['lte', { votes: { lte: 3 } }, '"votes" <= $1', [3]],
      ['gt', { votes: { gt: 3 } }, '"votes" > $1', [3]],
      ['gte', { votes: { gte: 3 } }, '"votes" >= $1', [3]],
      ['in', { kind: { in: ['must', 'should'] } }, '"kind" = ANY($1)', [['must', 'should']]],
      ['in with no values', { votes: { in: [] } }, '"votes" = ANY($1)', [[]]],
      ['isNull: true', { tags: { isNull: true } }, '"tags" IS NULL', []],
      ['isNull: false', { tags: { isNull: false } }, '"tags" IS NOT NULL', []],
      ['like', { text: { like: "it's 100%_" } }, '"text" LIKE $1', ["it's 100%_"]],
      ['like on a union of string literals', { kind: { like: 'm%' } }, '"kind" LIKE $1', ['m%']],
      ['eq on id', { id: { eq: ID } }, '"id" = $1', [ID]],
      ['in on id', { id: { in: [ID, ID2] } }, '"id" = ANY($1)', [[ID, ID2]]],
      [
        'gt on createdAt',
        { createdAt: { gt: '2024-01-01T00:00:00.000Z' } },
        '"createdAt" > $1',
        ['2024-01-01T00:00:00.000Z'],
      ],
    ])('%s', (_, where, condition, values) => {
      expect(query({ where })).toEqual({
        text: `SELECT * FROM ${RULES} WHERE ${condition} ${NEWEST_FIRST} LIMIT $${values.length + 1}`,
        values: [...values, 101],
      });
    });

    it('joins several filters, and several operators on one column, with AND in the order given', () => {
      const where = { text: { like: 'a%' }, votes: { gte: 1, lt: 10 }, tags: { isNull: false }, kind: { eq: 'must' } };
      expect(query({ where })).toEqual({
        text: `SELECT * FROM ${RULES} WHERE "text" LIKE $1 AND "votes" >= $2 AND "votes" < $3 AND "tags" IS NOT NULL AND "kind" = $4 ${NEWEST_FIRST} LIMIT $5`,
        values: ['a%', 1, 10, 'must', 101],
      });
    });

    it('an empty where adds no condition', () => {
      expect(query({ where: {} }).text).toBe(`SELECT * FROM ${RULES} ${NEWEST_FIRST} LIMIT $1`);
    });

    it.each([
      [
        'null instead of isNull',
        { text: { eq: null } },
        'args[0].where.text.eq: expected a value; use "isNull" for null',
      ],
      ['a string for an int column', { votes: { gt: '3' } }, 'args[0].where.votes.gt: expected integer, got "3"'],
      ['a fraction for an int column', { votes: { lte: 1.5 } }, 'args[0].where.votes.lte: expected integer, got 1.5'],
      [
        'a value outside a union',
        { kind: { eq: 'could' } },
        'args[0].where.kind.eq: expected one of "must" | "should", got "could"',
      ],
      ['a non-UUID id', { id: { eq: 'abc' } }, 'args[0].where.id.eq: expected id of a "rules" row, got "abc"'],
      ['in with a scalar', { votes: { in: 3 } }, 'args[0].where.votes.in: expected an array of at most 1000 values'],
      [
        'in with 1001 values',
        { votes: { in: Array.from({ length: 1001 }, (_, i) => i) } },
        'args[0].where.votes.in: expected an array of at most 1000 values',
      ],
      [
        'in with bad items, all reported',
        { votes: { in: [1, 'two', 3, null] } },
        'args[0].where.votes.in[1]: expected integer, got "two"; args[0].where.votes.in[3]: expected integer, got null',
      ],
      ['isNull with a string', { tags: { isNull: 'yes' } }, 'args[0].where.tags.isNull: expected boolean, got string'],
      ['like with a number', { text: { like: 5 } }, 'args[0].where.text.like: expected string, got number'],
    ])('422 for %s', (_, where, message) => {
      expect(httpError(() => query({ where }))).toEqual({ status: 422, message: `Invalid arguments: ${message}` });
    });

    it('in accepts exactly 1000 values', () => {
      const many = Array.from({ length: 1000 }, (_, i) => i);
      expect(query({ where: { votes: { in: many } } }).values).toEqual([many, 101]);
    });

    it.each([
      ['an unknown column', { color: { eq: 'red' } }, `unknown column "color" in "where" (columns: ${RULE_COLUMNS})`],
      [
        'an unknown operator',
        { text: { regex: 'a' } },
        `unknown operator "regex" on "text" (operators: ${OPERATOR_LIST})`,
      ],
      [
        'no operator',
        { text: {} },
        `"where.text" must be an object of operators like { "eq": ... } (operators: ${OPERATOR_LIST})`,
      ],
      [
        'a bare value instead of operators',
        { text: 'a' },
        `"where.text" must be an object of operators like { "eq": ... } (operators: ${OPERATOR_LIST})`,
      ],
      ['like on an int column', { votes: { like: '1%' } }, '"like" only applies to text columns, not "votes"'],
      ['like on createdAt', { createdAt: { like: '2024%' } }, '"like" only applies to text columns, not "createdAt"'],
      ['eq on a JSON column', { tags: { eq: 'x' } }, 'column "tags" holds JSON: only "isNull" can filter it'],
      ['in on a JSON column', { tags: { in: [] } }, 'column "tags" holds JSON: only "isNull" can filter it'],
    ])('400 for %s', (_, where, message) => {
      expect(httpError(() => query({ where }))).toEqual({ status: 400, message: `Invalid query: ${message}` });
    });

    it('400 when where is not an object', () => {
      for (const where of [[], 'text = 1', null, 3]) {
        expect(httpError(() => query({ where }))).toEqual({
          status: 400,
          message: 'Invalid query: "where" must be an object like { "votes": { "gt": 3 } }',
        });
      }
    });

    it('filterable limits the columns a client may filter on', () => {
      const fn = compileQueryRows(rules, { filterable: ['votes'] }, 'listRules');
      expect(fn.prepare([{ where: { votes: { gt: 1 } } }], alice).text).toBe(
        `SELECT * FROM ${RULES} WHERE "votes" > $1 ${NEWEST_FIRST} LIMIT $2`,
      );
      expect(httpError(() => fn.prepare([{ where: { text: { eq: 'a' } } }], alice))).toEqual({
        status: 400,
        message: 'Invalid query: column "text" cannot be filtered by the client',
      });
    });
  });

  describe('arguments', () => {
    it.each([
      ['two arguments', [{}, {}], 'queryRows takes one argument { where, orderBy, limit, cursor }, got 2'],
      ['a string argument', ['votes > 1'], 'the argument must be an object { where, orderBy, limit, cursor }'],
      ['an array argument', [[]], 'the argument must be an object { where, orderBy, limit, cursor }'],
      ['an unknown key', [{ page: 2 }], 'unknown key "page" (allowed: where, orderBy, limit, cursor)'],
    ])('400 for %s', (_, args, message) => {
      expect(httpError(() => listRules.prepare(args, alice))).toEqual({
        status: 400,
        message: `Invalid query: ${message}`,
      });
    });
  });

  describe('orderBy', () => {
    it.each([
      [{ column: 'votes', direction: 'asc' }, 'ORDER BY "votes" ASC, "id" ASC'],
      [{ column: 'votes', direction: 'desc' }, 'ORDER BY "votes" DESC, "id" DESC'],
      [{ column: 'votes' }, 'ORDER BY "votes" ASC, "id" ASC'],
      [{ column: 'text', direction: 'desc' }, 'ORDER BY "text" DESC, "id" DESC'],
      [{ column: 'createdAt', direction: 'asc' }, 'ORDER BY "createdAt" ASC, "id" ASC'],
      [{ column: 'id', direction: 'asc' }, 'ORDER BY "id" ASC, "id" ASC'],
    ])('%j', (orderBy, order) => {
      expect(query({ orderBy })).toEqual({ text: `SELECT * FROM ${RULES} ${order} LIMIT $1`, values: [101] });
    });

    it.each([
      ['an unknown column', { column: 'color' }, `"orderBy" names unknown column "color" (columns: ${RULE_COLUMNS})`],
      ['no column', { direction: 'asc' }, `"orderBy" names unknown column undefined (columns: ${RULE_COLUMNS})`],
      [
        'an optional JSON column',
        { column: 'tags' },
        '"orderBy" column "tags" is optional or JSON and cannot order rows',
      ],
      [
        'a direction in capitals',
        { column: 'votes', direction: 'DESC' },
        '"orderBy.direction" must be "asc" or "desc"',
      ],
      ['an unknown key', { column: 'votes', nulls: 'first' }, 'unknown key "nulls" in "orderBy"'],
      ['a string', 'votes desc', '"orderBy" must be { "column": "...", "direction": "asc" | "desc" }'],
    ])('400 for %s', (_, orderBy, message) => {
      expect(httpError(() => query({ orderBy }))).toEqual({ status: 400, message: `Invalid query: ${message}` });
    });

    it('defaultOrder applies when the client gives none, newest first unless it says asc', () => {
      expect(compileQueryRows(rules, { defaultOrder: { column: 'votes' } }, 'q').prepare([], alice).text).toBe(
        `SELECT * FROM ${RULES} ORDER BY "votes" DESC, "id" DESC LIMIT $1`,
      );
      expect(
        compileQueryRows(rules, { defaultOrder: { column: 'text', direction: 'asc' } }, 'q').prepare([], alice).text,
      ).toBe(`SELECT * FROM ${RULES} ORDER BY "text" ASC, "id" ASC LIMIT $1`);
    });
  });

  describe('limit', () => {
    it.each([
      [{}, undefined, 101],
      [{}, 1, 2],
      [{}, 1000, 1001],
      [{ maxLimit: 50 }, undefined, 51],
      [{ maxLimit: 50 }, 50, 51],
      [{ defaultLimit: 10 }, undefined, 11],
      [{ defaultLimit: 10, maxLimit: 20 }, 20, 21],
    ] as [QueryRowsOptions, number | undefined, number][])(
      'options %j, limit %j binds LIMIT %j',
      (options, limit, bound) => {
        const fn = compileQueryRows(rules, options, 'listRules');
        expect(fn.prepare([limit === undefined ? {} : { limit }], alice)).toEqual({
          text: `SELECT * FROM ${RULES} ${NEWEST_FIRST} LIMIT $1`,
          values: [bound],
        });
      },
    );

    it.each([
      [{}, 1001, 'expected an integer from 1 to 1000, got 1001'],
      [{}, 0, 'expected an integer from 1 to 1000, got 0'],
      [{}, -1, 'expected an integer from 1 to 1000, got -1'],
      [{}, 2.5, 'expected an integer from 1 to 1000, got 2.5'],
      [{}, '10', 'expected an integer from 1 to 1000, got "10"'],
      [{}, null, 'expected an integer from 1 to 1000, got null'],
      [{ maxLimit: 50 }, 51, 'expected an integer from 1 to 50, got 51'],
    ] as [QueryRowsOptions, unknown, string][])('options %j, limit %j is 422', (options, limit, message) => {
      const fn = compileQueryRows(rules, options, 'listRules');
      expect(httpError(() => fn.prepare([{ limit }], alice))).toEqual({
        status: 422,
        message: `Invalid arguments: args[0].limit: ${message}`,
      });
    });
  });

  describe('result and cursor', () => {
    const rows = [fakeRule(ID, 9), fakeRule(ID2, 7), fakeRule(ID3, 5)];

    it('returns the page with ISO timestamps and a cursor when there is one more row', () => {
      const args = [{ orderBy: { column: 'votes', direction: 'desc' }, limit: 2 }];
      const result = listRules.result(rows, args) as { rows: Record<string, unknown>[]; nextCursor: string | null };
      expect(result.rows).toEqual([
        { ...rows[0], createdAt: '2024-01-09T12:00:00.123Z' },
        { ...rows[1], createdAt: '2024-01-07T12:00:00.123Z' },
      ]);
      expect(result.nextCursor).toEqual(expect.stringMatching(/^[A-Za-z0-9_-]+$/));
    });

    it('returns no cursor on the last page', () => {
      const args = [{ limit: 3 }];
      expect(listRules.result(rows, args)).toEqual({
        rows: rows.map((r) => ({ ...r, createdAt: (r.createdAt as Date).toISOString() })),
        nextCursor: null,
      });
      expect(listRules.result([], [])).toEqual({ rows: [], nextCursor: null });
    });

    it('round-trips a cursor into a keyset condition on (order column, id): < for desc', () => {
      const input = { orderBy: { column: 'votes', direction: 'desc' }, limit: 2 };
      const { nextCursor } = listRules.result(rows, [input]) as { nextCursor: string };
      expect(listRules.prepare([{ ...input, cursor: nextCursor }], alice)).toEqual({
        text: `SELECT * FROM ${RULES} WHERE ("votes", "id") < ($1, $2) ORDER BY "votes" DESC, "id" DESC LIMIT $3`,
        values: [7, ID2, 3],
      });
    });

    it('round-trips a cursor: > for asc', () => {
      const input = { orderBy: { column: 'text', direction: 'asc' }, limit: 1 };
      const { nextCursor } = listRules.result(rows, [input]) as { nextCursor: string };
      expect(listRules.prepare([{ ...input, cursor: nextCursor }], alice)).toEqual({
        text: `SELECT * FROM ${RULES} WHERE ("text", "id") > ($1, $2) ORDER BY "text" ASC, "id" ASC LIMIT $3`,
        values: ['rule 9', ID, 2],
      });
    });

    it('round-trips a cursor on the default order, with createdAt as an ISO string', () => {
      const { nextCursor } = listRules.result(rows, [{ limit: 1 }]) as { nextCursor: string };
      expect(listRules.prepare([{ limit: 1, cursor: nextCursor }], alice)).toEqual({
        text: `SELECT * FROM ${RULES} WHERE ("createdAt", "id") < ($1, $2) ${NEWEST_FIRST} LIMIT $3`,
        values: ['2024-01-09T12:00:00.123Z', ID, 2],
      });
    });

    it('binds scope, then where, then cursor, then limit', () => {
      const fn = compileQueryRows(notes, { scope: { ownerId: 'auth.userId' } }, 'listNotes');
      const input = { where: { body: { like: 'a%' } }, orderBy: { column: 'body', direction: 'asc' }, limit: 4 };
      expect(fn.prepare([{ ...input, cursor: cursorOf('apple', ID) }], alice)).toEqual({
        text: `SELECT * FROM ${NOTES} WHERE "ownerId" = $1 AND "body" LIKE $2 AND ("body", "id") > ($3, $4) ORDER BY "body" ASC, "id" ASC LIMIT $5`,
        values: ['alice', 'a%', 'apple', ID, 5],
      });
    });

    it('accepts every cursor it returned, however long the order value', () => {
      // A text order whose last row holds 2000 characters makes a cursor of about 2.7 kB.
      const long = [fakeRule(ID, 1, 'a'.repeat(2000)), fakeRule(ID2, 2, 'b')];
      const input = { orderBy: { column: 'text', direction: 'asc' }, limit: 1 };
      const { nextCursor } = listRules.result(long, [input]) as { nextCursor: string };
      expect(listRules.prepare([{ ...input, cursor: nextCursor }], alice).values).toEqual(['a'.repeat(2000), ID, 2]);
    });

    it('400 for a cursor that does not fit the current order column', () => {
      const votesCursor = cursorOf(7, ID2);
      expect(httpError(() => query({ orderBy: { column: 'text' }, cursor: votesCursor }))).toEqual({
        status: 400,
        message: 'Invalid query: "cursor" is not a cursor this function returned',
      });
      expect(httpError(() => query({ cursor: 'not-a-cursor' }))).toEqual({
        status: 400,
        message: 'Invalid query: "cursor" is not a cursor this function returned',
      });
    });
  });

  describe('scope', () => {
    const listNotes = compileQueryRows(notes, { scope: { ownerId: 'auth.userId' } }, 'listNotes');

    it('binds the scope column from ctx', () => {
      expect(listNotes.prepare([], alice)).toEqual({
        text: `SELECT * FROM ${NOTES} WHERE "ownerId" = $1 ${NEWEST_FIRST} LIMIT $2`,
        values: ['alice', 101],
      });
      expect(listNotes.prepare([], makeCtx({ userId: 'bob' })).values).toEqual(['bob', 101]);
    });

    it('a client cannot filter on the scope column', () => {
      expect(httpError(() => listNotes.prepare([{ where: { ownerId: { eq: 'bob' } } }], alice))).toEqual({
        status: 400,
        message: 'Invalid query: column "ownerId" cannot be filtered by the client',
      });
      expect(httpError(() => listNotes.prepare([{ where: { ownerId: { isNull: false } } }], alice))).toEqual({
        status: 400,
        message: 'Invalid query: column "ownerId" cannot be filtered by the client',
      });
    });

    it('401 for a caller without the identity the scope is bound to', () => {
      expect(httpError(() => listNotes.prepare([], anonymous))).toEqual({
        status: 401,
        message: 'Unauthorized: this function is scoped by auth.userId, which this caller does not have',
      });
    });

    it('binds a function of ctx and other context paths', () => {
      const byTenant = compileQueryRows(notes, { scope: { ownerId: (ctx) => ctx.visibility.tenantId } }, 'listNotes');
      expect(byTenant.prepare([], makeCtx({ tenantId: 't1' })).values).toEqual(['t1', 101]);
      expect(httpError(() => byTenant.prepare([], alice))).toEqual({
        status: 401,
        message: 'Unauthorized: this function is scoped by a context value, which this caller does not have',
      });
      const byFeature = compileQueryRows(notes, { scope: { ownerId: 'featureId' } }, 'listNotes');
      expect(byFeature.prepare([], anonymous).values).toEqual(['feature-rules', 101]);
      const byTenantPath = compileQueryRows(notes, { scope: { ownerId: 'visibility.tenantId' } }, 'listNotes');
      expect(httpError(() => byTenantPath.prepare([], alice)).status).toBe(401);
    });
  });
});

describe('compileInsertRow', () => {
  const addRule = compileInsertRow(rules, {}, 'addRule');

  it('inserts the given columns, binding JSON as text with a ::jsonb cast', () => {
    const tags = { labels: ['a', "it's"], nested: { n: 1 } };
    expect(addRule.prepare([{ text: 'a', votes: 1, kind: 'must', tags }], alice)).toEqual({
      text: `INSERT INTO ${RULES} ("text", "votes", "kind", "tags") VALUES ($1, $2, $3, $4::jsonb) RETURNING *`,
      values: ['a', 1, 'must', JSON.stringify(tags)],
    });
    expect(addRule.kind).toBe('insertRow');
    expect(addRule.readOnly).toBe(false);
  });

  it('binds a JSON string value as a JSON string', () => {
    expect(addRule.prepare([{ text: 'a', votes: 1, kind: 'must', tags: 'x' }], alice).values).toEqual([
      'a',
      1,
      'must',
      '"x"',
    ]);
  });

  it('leaves out an optional column that is absent or null (stored as NULL)', () => {
    const expected = {
      text: `INSERT INTO ${RULES} ("text", "votes", "kind") VALUES ($1, $2, $3) RETURNING *`,
      values: ['a', 1, 'must'],
    };
    expect(addRule.prepare([{ text: 'a', votes: 1, kind: 'must' }], alice)).toEqual(expected);
    expect(addRule.prepare([{ text: 'a', votes: 1, kind: 'must', tags: null }], alice)).toEqual(expected);
  });

  it('reports every value issue together', () => {
    expect(httpError(() => addRule.prepare([{ text: 1, votes: '2', kind: 'could', tags: undefined }], alice))).toEqual({
      status: 422,
      message:
        'Invalid arguments: args[0].text: expected string, got 1; args[0].votes: expected integer, got "2"; args[0].kind: expected one of "must" | "should", got "could"',
    });
    expect(httpError(() => addRule.prepare([{ text: 'a' }], alice))).toEqual({
      status: 422,
      message:
        'Invalid arguments: args[0].votes: expected integer, got undefined; args[0].kind: expected one of "must" | "should", got undefined',
    });
  });

  it('reports unknown fields and server-set fields (id, createdAt) together', () => {
    expect(
      httpError(() =>
        addRule.prepare(
          [{ text: 'a', votes: 1, kind: 'must', id: ID, createdAt: '2024-01-01T00:00:00Z', color: 'red' }],
          alice,
        ),
      ),
    ).toEqual({
      status: 422,
      message:
        'Invalid arguments: args[0].id: is set by the server; args[0].createdAt: is set by the server; args[0].color: unknown field',
    });
  });

  it.each([
    ['no arguments', [], 'args: expected [values], got 0 arguments'],
    ['two arguments', [{}, {}], 'args: expected [values], got 2 arguments'],
    ['a non-object', ['text'], 'args[0]: expected an object of "rules" fields'],
    ['an array', [[]], 'args[0]: expected an object of "rules" fields'],
    ['null', [null], 'args[0]: expected an object of "rules" fields'],
  ])('422 for %s', (_, args, message) => {
    expect(httpError(() => addRule.prepare(args, alice))).toEqual({
      status: 422,
      message: `Invalid arguments: ${message}`,
    });
  });

  it('fields limits the columns a client may set', () => {
    const fn = compileInsertRow(rules, { fields: ['text', 'votes', 'kind'] }, 'addRule');
    expect(fn.prepare([{ text: 'a', votes: 1, kind: 'must' }], alice).text).toBe(
      `INSERT INTO ${RULES} ("text", "votes", "kind") VALUES ($1, $2, $3) RETURNING *`,
    );
    expect(httpError(() => fn.prepare([{ text: 'a', votes: 1, kind: 'must', tags: [] }], alice))).toEqual({
      status: 422,
      message: 'Invalid arguments: args[0].tags: cannot be set by a client insert',
    });
  });

  it('stamps the scope column from ctx; a client cannot set it; anonymous is 401', () => {
    const addNote = compileInsertRow(notes, { scope: { ownerId: 'auth.userId' } }, 'addNote');
    expect(addNote.prepare([{ body: 'hi' }], alice)).toEqual({
      text: `INSERT INTO ${NOTES} ("body", "ownerId") VALUES ($1, $2) RETURNING *`,
      values: ['hi', 'alice'],
    });
    expect(httpError(() => addNote.prepare([{ body: 'hi', ownerId: 'bob' }], alice))).toEqual({
      status: 422,
      message: 'Invalid arguments: args[0].ownerId: is set by the server',
    });
    expect(httpError(() => addNote.prepare([{ body: 'hi' }], anonymous))).toEqual({
      status: 401,
      message: 'Unauthorized: this function is scoped by auth.userId, which this caller does not have',
    });
  });

  it('inserts DEFAULT VALUES when there is nothing to set', () => {
    const memo = modelSchema(
      'feature-rules',
      defineSchema({ memo: defineTable({ note: v.optional(v.string()) }) }),
    ).tables.get('memo')!;
    expect(compileInsertRow(memo, {}, 'addMemo').prepare([{}], alice)).toEqual({
      text: 'INSERT INTO "ext_feature_rules"."memo" DEFAULT VALUES RETURNING *',
      values: [],
    });
  });

  it('result is the new row with an ISO timestamp', () => {
    expect(addRule.result([fakeRule(ID, 1)], [{}])).toEqual({
      ...fakeRule(ID, 1),
      createdAt: '2024-01-01T12:00:00.123Z',
    });
  });

  it('a required JSON column given null is stored as JSON null or refused, never left out (NOT NULL)', () => {
    // v.json() accepts null, but the column is NOT NULL: leaving it out of the INSERT fails in the database.
    const table = modelSchema('feature-rules', defineSchema({ doc: defineTable({ meta: v.json() }) })).tables.get(
      'doc',
    )!;
    let statement: { text: string; values: unknown[] } | undefined;
    try {
      statement = compileInsertRow(table, {}, 'addDoc').prepare([{ meta: null }], alice);
    } catch (error) {
      expect(error).toBeInstanceOf(RequestError);
      expect((error as RequestError).status).toBe(422);
      expect((error as RequestError).message).toContain('args[0].meta');
      return;
    }
    expect(statement).toEqual({
      text: 'INSERT INTO "ext_feature_rules"."doc" ("meta") VALUES ($1::jsonb) RETURNING *',
      values: ['null'],
    });
  });

  it('a column named like an Object.prototype member is read from the request only', () => {
    // A client that leaves out an optional column "constructor" must not have Object.prototype.constructor read instead.
    const table = modelSchema(
      'feature-rules',
      defineSchema({ odd: defineTable({ constructor: v.optional(v.string()), x: v.string() }) }),
    ).tables.get('odd')!;
    expect(compileInsertRow(table, {}, 'addOdd').prepare([{ x: 'a' }], alice)).toEqual({
      text: 'INSERT INTO "ext_feature_rules"."odd" ("x") VALUES ($1) RETURNING *',
      values: ['a'],
    });
  });
});

describe('compilePatchRow', () => {
  const patchRule = compilePatchRow(rules, {}, 'patchRule');

  it('sets the given fields, then binds id', () => {
    expect(patchRule.prepare([ID, { votes: 5, tags: { x: 1 } }], alice)).toEqual({
      text: `UPDATE ${RULES} SET "votes" = $1, "tags" = $2::jsonb WHERE "id" = $3 RETURNING *`,
      values: [5, '{"x":1}', ID],
    });
    expect(patchRule.kind).toBe('patchRow');
    expect(patchRule.readOnly).toBe(false);
  });

  it('null for an optional column sets NULL without binding a value', () => {
    expect(patchRule.prepare([ID, { tags: null }], alice)).toEqual({
      text: `UPDATE ${RULES} SET "tags" = NULL WHERE "id" = $1 RETURNING *`,
      values: [ID],
    });
  });

  it.each([
    ['no changes', [ID, {}], 'args[1]: expected at least one field to change'],
    ['null for a required column', [ID, { text: null }], 'args[1].text: expected string, got null'],
    [
      'several bad values',
      [ID, { text: 1, votes: 'x' }],
      'args[1].text: expected string, got 1; args[1].votes: expected integer, got "x"',
    ],
    [
      'id and createdAt',
      [ID, { id: ID2, createdAt: 'now' }],
      'args[1].id: is set by the server; args[1].createdAt: is set by the server',
    ],
    ['an unknown field', [ID, { color: 'red' }], 'args[1].color: unknown field'],
    ['a non-UUID id', ['1', { votes: 1 }], 'args[0]: expected id of a "rules" row, got "1"'],
    ['a numeric id', [1, { votes: 1 }], 'args[0]: expected id of a "rules" row, got 1'],
    ['only an id', [ID], 'args: expected [id, changes], got 1 arguments'],
    ['three arguments', [ID, {}, {}], 'args: expected [id, changes], got 3 arguments'],
    ['changes that are not an object', [ID, 'votes = 1'], 'args[1]: expected an object of "rules" fields'],
  ])('422 for %s', (_, args, message) => {
    expect(httpError(() => patchRule.prepare(args, alice))).toEqual({
      status: 422,
      message: `Invalid arguments: ${message}`,
    });
  });

  it('fields limits the columns a client may set', () => {
    const fn = compilePatchRow(rules, { fields: ['votes'] }, 'voteRule');
    expect(fn.prepare([ID, { votes: 2 }], alice)).toEqual({
      text: `UPDATE ${RULES} SET "votes" = $1 WHERE "id" = $2 RETURNING *`,
      values: [2, ID],
    });
    expect(httpError(() => fn.prepare([ID, { text: 'x' }], alice))).toEqual({
      status: 422,
      message: 'Invalid arguments: args[1].text: cannot be set by a client patch',
    });
  });

  it('binds the scope column in WHERE; a client cannot change it; anonymous is 401', () => {
    const patchNote = compilePatchRow(notes, { scope: { ownerId: 'auth.userId' } }, 'patchNote');
    expect(patchNote.prepare([ID, { body: 'x' }], alice)).toEqual({
      text: `UPDATE ${NOTES} SET "body" = $1 WHERE "id" = $2 AND "ownerId" = $3 RETURNING *`,
      values: ['x', ID, 'alice'],
    });
    expect(httpError(() => patchNote.prepare([ID, { ownerId: 'alice' }], alice))).toEqual({
      status: 422,
      message: 'Invalid arguments: args[1].ownerId: is set by the server',
    });
    expect(httpError(() => patchNote.prepare([ID, { body: 'x' }], anonymous)).status).toBe(401);
  });

  it('result is the row, or 404 when no row matched', () => {
    expect(patchRule.result([fakeRule(ID, 2)], [ID, { votes: 2 }])).toEqual({
      ...fakeRule(ID, 2),
      createdAt: '2024-01-02T12:00:00.123Z',
    });
    expect(httpError(() => patchRule.result([], [ID, { votes: 2 }]))).toEqual({
      status: 404,
      message: `Row not found: no "rules" row with id "${ID}" that this caller may change`,
    });
  });

  it('a required JSON column given null is set to JSON null or refused, never to SQL NULL', () => {
    const table = modelSchema('feature-rules', defineSchema({ doc: defineTable({ meta: v.json() }) })).tables.get(
      'doc',
    )!;
    let statement: { text: string; values: unknown[] } | undefined;
    try {
      statement = compilePatchRow(table, {}, 'patchDoc').prepare([ID, { meta: null }], alice);
    } catch (error) {
      expect(error).toBeInstanceOf(RequestError);
      expect((error as RequestError).status).toBe(422);
      expect((error as RequestError).message).toContain('args[1].meta');
      return;
    }
    expect(statement).toEqual({
      text: 'UPDATE "ext_feature_rules"."doc" SET "meta" = $1::jsonb WHERE "id" = $2 RETURNING *',
      values: ['null', ID],
    });
  });
});

describe('compileDeleteRow', () => {
  const deleteRule = compileDeleteRow(rules, {}, 'deleteRule');

  it('deletes by id', () => {
    expect(deleteRule.prepare([ID], alice)).toEqual({
      text: `DELETE FROM ${RULES} WHERE "id" = $1 RETURNING "id"`,
      values: [ID],
    });
    expect(deleteRule.kind).toBe('deleteRow');
    expect(deleteRule.readOnly).toBe(false);
  });

  it.each([
    ['no arguments', [], 'args: expected [id], got 0 arguments'],
    ['two arguments', [ID, ID2], 'args: expected [id], got 2 arguments'],
    ['a non-UUID id', ['abc'], 'args[0]: expected id of a "rules" row, got "abc"'],
    ['an object id', [{ id: ID }], 'args[0]: expected id of a "rules" row, got object'],
  ])('422 for %s', (_, args, message) => {
    expect(httpError(() => deleteRule.prepare(args, alice))).toEqual({
      status: 422,
      message: `Invalid arguments: ${message}`,
    });
  });

  it('binds the scope column in WHERE; anonymous is 401', () => {
    const deleteNote = compileDeleteRow(notes, { scope: { ownerId: 'auth.userId' } }, 'deleteNote');
    expect(deleteNote.prepare([ID], alice)).toEqual({
      text: `DELETE FROM ${NOTES} WHERE "id" = $1 AND "ownerId" = $2 RETURNING "id"`,
      values: [ID, 'alice'],
    });
    expect(httpError(() => deleteNote.prepare([ID], anonymous))).toEqual({
      status: 401,
      message: 'Unauthorized: this function is scoped by auth.userId, which this caller does not have',
    });
  });

  it('result is { deleted: id }, or 404 when no row matched', () => {
    expect(deleteRule.result([{ id: ID }], [ID])).toEqual({ deleted: ID });
    expect(httpError(() => deleteRule.result([], [ID]))).toEqual({
      status: 404,
      message: `Row not found: no "rules" row with id "${ID}" that this caller may change`,
    });
  });
});

describe('compile-time usage errors', () => {
  const extra = modelSchema(
    'feature-rules',
    defineSchema({ extra: defineTable({ nick: v.optional(v.string()), meta: v.json() }) }),
  ).tables.get('extra')!;
  type Compile = (table: TableModel, options: never, where: string) => unknown;
  const writers: [string, Compile][] = [
    ['insertRow', compileInsertRow as Compile],
    ['patchRow', compilePatchRow as Compile],
    ['deleteRow', compileDeleteRow as Compile],
  ];
  const all: [string, Compile][] = [['queryRows', compileQueryRows as Compile], ...writers];

  it.each(all)('%s: a scope column that is not a column of the table', (_, compile) => {
    expect(usageError(() => compile(notes, { scope: { owner: 'auth.userId' } } as never, 'fn'))).toBe(
      'fn: scope column "owner" is not a column of "notes"',
    );
  });

  it.each(all)('%s: a scope on a system column', (_, compile) => {
    expect(usageError(() => compile(notes, { scope: { id: 'auth.userId' } } as never, 'fn'))).toBe(
      'fn: scope column "id" is not a column of "notes"',
    );
  });

  it.each(all)('%s: a scope binding that is not a context path', (_, compile) => {
    for (const binding of ['auth..userId', 'auth.user-id', 'auth.userId; DROP', '__proto__', '']) {
      expect(usageError(() => compile(notes, { scope: { ownerId: binding } } as never, 'fn'))).toBe(
        'fn: scope "ownerId" must be a context path like "auth.userId" or a function of ctx',
      );
    }
  });

  it('queryRows: a filterable column that is not a column of the table', () => {
    expect(usageError(() => compileQueryRows(rules, { filterable: ['votes', 'color'] }, 'listRules'))).toBe(
      'listRules: filterable column "color" is not a column of "rules"',
    );
  });

  it.each([0, 1001, 1.5, -1, Number.NaN])('queryRows: maxLimit %j', (maxLimit) => {
    expect(usageError(() => compileQueryRows(rules, { maxLimit }, 'listRules'))).toBe(
      'listRules: maxLimit must be an integer from 1 to 1000',
    );
  });

  it.each([
    [{ defaultLimit: 0 }],
    [{ defaultLimit: 1001 }],
    [{ defaultLimit: 2.5 }],
    [{ defaultLimit: 60, maxLimit: 50 }],
  ] as [QueryRowsOptions][])('queryRows: %j', (options) => {
    expect(usageError(() => compileQueryRows(rules, options, 'listRules'))).toBe(
      'listRules: defaultLimit must be an integer from 1 to maxLimit',
    );
  });

  it('queryRows: a defaultOrder column that does not exist', () => {
    expect(usageError(() => compileQueryRows(rules, { defaultOrder: { column: 'color' } }, 'listRules'))).toBe(
      `listRules: defaultOrder names unknown column "color" (columns: ${RULE_COLUMNS})`,
    );
  });

  it.each([
    ['an optional JSON column', rules, 'tags'],
    ['an optional column', extra, 'nick'],
    ['a required JSON column', extra, 'meta'],
  ])('queryRows: a defaultOrder on %s', (_, table, column) => {
    expect(usageError(() => compileQueryRows(table, { defaultOrder: { column } }, 'listRules'))).toBe(
      `listRules: defaultOrder column "${column}" is optional or JSON and cannot order rows`,
    );
  });

  it('queryRows: a client orderBy on an optional or JSON column is 400', () => {
    const fn = compileQueryRows(extra, {}, 'listExtra');
    for (const column of ['nick', 'meta']) {
      expect(httpError(() => fn.prepare([{ orderBy: { column } }], alice))).toEqual({
        status: 400,
        message: `Invalid query: "orderBy" column "${column}" is optional or JSON and cannot order rows`,
      });
    }
  });

  it.each([
    ['an unknown field', ['text', 'color'], 'color'],
    ['a system column', ['text', 'id'], 'id'],
    ['createdAt', ['createdAt'], 'createdAt'],
  ])('insertRow and patchRow: fields naming %s', (_, fields, bad) => {
    for (const compile of [compileInsertRow, compilePatchRow]) {
      expect(usageError(() => compile(rules, { fields } as WriteRowOptions, 'writeRule'))).toBe(
        `writeRule: field "${bad}" cannot be set by clients of "rules"`,
      );
    }
  });

  it('insertRow and patchRow: fields naming the scope column', () => {
    for (const compile of [compileInsertRow, compilePatchRow]) {
      expect(
        usageError(() =>
          compile(notes, { scope: { ownerId: 'auth.userId' }, fields: ['body', 'ownerId'] }, 'writeNote'),
        ),
      ).toBe('writeNote: field "ownerId" cannot be set by clients of "notes"');
    }
  });
});
