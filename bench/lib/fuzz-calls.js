/**
 * The real functions of the fuzzed fixtures (`fixtures/handlers`, `fixtures/crud`) and how to
 * call them with valid arguments, with arguments of the wrong shape, and the ones that fail on
 * purpose. Feature ids and function names must match the fixtures' `feature.json`.
 */

export const HANDLERS = 'feature-handlers';
export const CRUD = 'feature-crud';

/**
 * @typedef {object} FunctionCall
 * @property {string} featureId
 * @property {string} fn
 * @property {unknown[]} args
 * @property {boolean} simple a quick call that should answer 200 (or 429 when rate limited)
 * @property {number[]} [extra] statuses the function itself chooses (a 409 it throws)
 */

/**
 * @typedef {object} CallContext
 * @property {import('./fuzz-random.js').Random} rng
 * @property {boolean} crud whether the host serves the crud feature
 * @property {number} port the host's port (actions fetch the host's own `/_health`)
 */

const word = (rng) => rng.text(rng.int(1, 12));

/** A v4-shaped UUID from the seeded generator (ids of rows that mostly do not exist). */
export function uuid(rng) {
  const hex = rng.bytes(16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/** Valid calls: name -> args. `simple` ones always answer 200 when the host is well. */
const VALID_HANDLERS = {
  hostName: { simple: true, args: () => [] },
  addRule: { simple: true, args: (rng) => [{ text: word(rng), votes: rng.int(-5, 100) }] },
  getRule: { simple: true, args: (rng) => [uuid(rng)] },
  topRules: { simple: true, args: (rng) => [rng.int(0, 120)] },
  whoAmI: { simple: true, args: () => [] },
  dice: { simple: true, args: (rng) => [word(rng)] },
  version: { simple: true, args: () => [] },
  quick: { simple: true, args: () => [] },
  remember: { simple: true, args: (rng) => [word(rng)] },
  zodChecked: { simple: true, args: (rng) => [{ title: word(rng), count: rng.int(0, 9) }] },
  addAndCount: { simple: false, args: (rng) => [word(rng)] },
  secretCheck: { simple: false, args: () => [] },
  callUpstream: { simple: false, args: (_rng, ctx) => [`http://127.0.0.1:${ctx.port}/_health`] },
};

const VALID_CRUD = {
  listRules: {
    simple: true,
    args: (rng) =>
      rng.pick([
        [],
        [{ limit: rng.int(1, 50) }],
        [{ where: { votes: { gte: rng.int(0, 50) } }, orderBy: { column: 'votes', direction: 'desc' }, limit: 5 }],
        [{ where: { kind: { in: ['must', 'should'] } } }],
      ]),
  },
  addRule: {
    simple: true,
    args: (rng) => [
      {
        text: word(rng),
        votes: rng.int(0, 100),
        kind: rng.pick(['must', 'should']),
        ...(rng.chance(0.3) ? { tags: [word(rng), { n: rng.int(0, 9) }] } : {}),
      },
    ],
  },
  topRules: { simple: true, args: (rng) => [rng.int(0, 100)] },
  countRules: { simple: true, args: () => [] },
  editRule: { simple: false, args: (rng) => [uuid(rng), { votes: rng.int(0, 9) }] },
  removeRule: { simple: false, args: (rng) => [uuid(rng)] },
  voteTwice: { simple: false, args: (rng) => [uuid(rng)] },
  listMine: { simple: false, args: () => [] },
  addMine: { simple: false, args: (rng) => [{ body: word(rng) }] },
};

/** Functions of the handlers fixture that fail on purpose, cheaply. */
const CHEAP_FAULTS = [
  'throwsString',
  'throwsNull',
  'throwsStatusObject',
  'throwsBadStatus',
  'cyclic',
  'recurse',
  'hugeResult',
  'sneakyWrite',
  'fetchInQuery',
  'fetchInMutation',
  'pollute',
  'mutateArgs',
  'otherFeatureTable',
  'otherSchemaTable',
  'writeOtherTable',
  'reachHost',
  'addTwoThenFail',
];

/** Functions that burn a whole isolate's memory or CPU budget: rare, they cost seconds. */
const HEAVY_FAULTS = [
  'bombArrays',
  'bombStrings',
  'bombObjects',
  'bombBuffers',
  'spin',
  'spinAfterAwait',
  'spinInAction',
  'neverSettles',
];

/**
 * One valid call to a real function of a served feature.
 *
 * @param {CallContext} ctx
 * @returns {FunctionCall}
 */
export function validCall(ctx) {
  const { rng } = ctx;
  const [featureId, table] = ctx.crud && rng.chance(0.4) ? [CRUD, VALID_CRUD] : [HANDLERS, VALID_HANDLERS];
  const fn = rng.pick(Object.keys(table));
  return { featureId, fn, args: table[fn].args(rng, ctx), simple: table[fn].simple };
}

/**
 * A simple call (200 unless the host is unwell), for cases that break only the wrapping.
 *
 * @param {CallContext} ctx
 * @returns {FunctionCall}
 */
export function simpleCall(ctx) {
  for (;;) {
    const call = validCall(ctx);
    if (call.simple) return call;
  }
}

/**
 * A real function called with arguments of the wrong shape (validators answer 422, plain
 * functions and CRUD whatever their code does with them).
 *
 * @param {CallContext} ctx
 * @returns {FunctionCall}
 */
export function wrongArgsCall(ctx) {
  const { rng } = ctx;
  const call = validCall(ctx);
  const junk = rng.pick([
    () => [],
    () => [null],
    () => [rng.int(-1e9, 1e9)],
    () => ['x'.repeat(rng.int(0, 5000))],
    () => [{ text: 1, votes: 'many' }],
    () => [{ where: { colour: { eq: 'red' } } }],
    () => [{ where: { votes: { between: [1, 2] } } }],
    () => [{ limit: 100_000 }],
    () => [{ cursor: 'garbage' }],
    () => [{ orderBy: { column: '"; DROP TABLE rules; --' } }],
    () => [{ where: { text: { like: '%\\' } } }],
    () => [JSON.parse('{"__proto__": {"polluted": true}, "constructor": {"prototype": {"polluted": true}}}')],
    () => [1.5, 2.5, 3.5],
    () => [[[]], {}, ''],
    () => [{ text: 'x'.repeat(rng.int(1000, 100_000)), votes: 1, kind: 'must' }],
    () => [{ text: 'x', votes: Number.MAX_SAFE_INTEGER + 2, kind: 'must' }],
    () => [uuid(rng), { id: uuid(rng), createdAt: 'now' }],
  ])();
  return { ...call, args: junk, simple: false };
}

/**
 * A function that fails on purpose: throws odd values, returns what JSON cannot carry, reaches
 * for what it may not. `heavy` ones run an isolate out of memory or CPU.
 *
 * @param {CallContext} ctx
 * @param {boolean} heavy
 * @returns {FunctionCall}
 */
export function faultCall(ctx, heavy) {
  const fn = ctx.rng.pick(heavy ? HEAVY_FAULTS : CHEAP_FAULTS);
  const args = fn === 'mutateArgs' ? [{ a: 1 }] : fn === 'addTwoThenFail' ? [word(ctx.rng)] : [];
  return { featureId: HANDLERS, fn, args, simple: false, extra: fn === 'addTwoThenFail' ? [409] : [] };
}

/** Names that exist on every object and must never be callable (SPEC §4). */
export const PROTOTYPE_NAMES = [
  '__proto__',
  'constructor',
  'toString',
  'hasOwnProperty',
  'valueOf',
  '__defineGetter__',
  'prototype',
  'then',
  'default',
  'isPrototypeOf',
];
