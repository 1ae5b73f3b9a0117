/**
 * The fuzzer's request classes against `/rpc/`: valid calls to the fixtures' real functions, and
 * malformed ones (bad JSON, wrong content types, deep/wide/huge arguments, broken UTF-8, wrong
 * methods, path tricks, prototype names, hostile headers, bodies over the limit, slow and
 * abandoned connections, pipelined requests). Each class is a function from a context to one
 * case; `fuzz-generator.js` weighs and draws them.
 */
import { CRUD, faultCall, HANDLERS, PROTOTYPE_NAMES, simpleCall, validCall, wrongArgsCall } from './fuzz-calls.js';
import { CONTRACT_STATUSES, oneRequest, REFUSED_STATUSES, shorten, SIMPLE_STATUSES } from './fuzz-expect.js';
import { chunkedBody, requestBytes } from './fuzz-wire.js';

/** The hosts' default body limit (1 MiB, SPEC §4). */
export const BODY_LIMIT = 1024 * 1024;

/**
 * @typedef {import('./fuzz-calls.js').CallContext & {
 *   hostName: 'serve' | 'vite',
 *   hostHeader: string,
 * }} CaseContext
 */

/** @typedef {(ctx: CaseContext) => import('./fuzz-expect.js').FuzzCase} CaseClass */

const JSON_TYPE = /** @type {import('./fuzz-wire.js').Header} */ (['Content-Type', 'application/json']);
const target = (featureId, fn) => `/rpc/${featureId}/${fn}`;
const argsBody = (args) => JSON.stringify({ args });

/** A POST of `{"args": ...}` to a function, with extra headers. */
function callSpec(ctx, call, headers = []) {
  return {
    method: 'POST',
    target: target(call.featureId, call.fn),
    host: ctx.hostHeader,
    headers: [JSON_TYPE, ...headers],
    body: argsBody(call.args),
  };
}

/** The expectation of a valid call: quick ones 200 (or 429/503), others anything of the contract. */
function callExpect(call) {
  return call.simple
    ? { kind: 'rpc', statuses: SIMPLE_STATUSES, simple: true }
    : { kind: 'rpc', extra: call.extra ?? [] };
}

/** @type {CaseClass} */
function valid(ctx) {
  const call = validCall(ctx);
  const headers = [];
  let requestId;
  if (ctx.rng.chance(0.2)) {
    requestId = `fz-${ctx.rng.text(8)}`;
    headers.push(['X-Request-Id', requestId]);
  }
  // A dev identity per caller: the dev host keeps a context (and a rate bucket) per identity.
  if (ctx.rng.chance(0.2))
    headers.push([
      'X-Favn-Dev-Identity',
      JSON.stringify({ sub: `u${ctx.rng.int(0, 50)}`, tenant_id: `t${ctx.rng.int(0, 20)}` }),
    ]);
  return oneRequest(
    'valid',
    `${call.featureId}/${call.fn} ${shorten(argsBody(call.args), 60)}`,
    callSpec(ctx, call, headers),
    { ...callExpect(call), requestId },
  );
}

/** @type {CaseClass} */
function wrongArgs(ctx) {
  const call = wrongArgsCall(ctx);
  return oneRequest(
    'wrong-args',
    `${call.featureId}/${call.fn} ${shorten(argsBody(call.args), 60)}`,
    callSpec(ctx, call),
    { kind: 'rpc' },
  );
}

/** @type {CaseClass} */
function faults(ctx) {
  const call = faultCall(ctx, false);
  return oneRequest('fault', `${call.featureId}/${call.fn}`, callSpec(ctx, call), { kind: 'rpc', extra: call.extra });
}

/** @type {CaseClass} */
function heavyFaults(ctx) {
  const call = faultCall(ctx, true);
  return oneRequest('heavy-fault', `${call.featureId}/${call.fn}`, callSpec(ctx, call), { kind: 'rpc' });
}

const BAD_JSON = [
  '',
  ' ',
  '{',
  '}',
  '{"args":',
  '{"args":[1,]}',
  '{"args":[1]} trailing',
  "{'args':[]}",
  '{"args":[NaN]}',
  '{"args":[Infinity]}',
  '{"args":[01]}',
  '{"args":[.5]}',
  '{"args":["\\x41"]}',
  '{"args":["\\u12"]}',
  '{"args":["tab\there"]}',
  '{"args":[]}{"args":[]}',
  'null',
  '[]',
  '"args"',
  '123',
  'true',
  '{"args":{}}',
  '{"args":"x"}',
  '{"args":null}',
  '{"args":1}',
  '{"arg":[]}',
  '{}',
  '\ufeff{"args":[]}',
  '{"args":[]',
  '[{"args":[]}]',
  '{"args":[undefined]}',
  '{"args":[/x/]}',
  '{"args":[0x10]}',
  '{"__proto__":{"args":[]}}',
  '{"constructor":{"prototype":{"args":[]}}}',
];

/** @type {CaseClass} */
function badJson(ctx) {
  const call = simpleCall(ctx);
  const { rng } = ctx;
  const body = rng.chance(0.15) ? rng.bytes(rng.int(1, 2048)) : rng.pick(BAD_JSON);
  return oneRequest(
    'bad-json',
    `${call.featureId}/${call.fn} ${shorten(body, 50)}`,
    { ...callSpec(ctx, call), body },
    { kind: 'rpc', statuses: [400] },
  );
}

const WRONG_TYPES = [
  '',
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/xml',
  'text/json',
  'application/jsonp',
  'json',
  '*/*',
  'application/',
  'application/x-json',
];
const RIGHT_TYPES = [
  'application/json; charset=utf-8',
  'APPLICATION/JSON',
  'application/vnd.api+json',
  'application/json;charset=latin1',
  'application/ld+json',
];

/** @type {CaseClass} */
function contentType(ctx) {
  const call = simpleCall(ctx);
  const { rng } = ctx;
  const right = rng.chance(0.3);
  const type = right ? rng.pick(RIGHT_TYPES) : rng.pick(WRONG_TYPES);
  const spec = {
    ...callSpec(ctx, call),
    headers: type === '' && rng.chance(0.5) ? [] : [['Content-Type', Buffer.from(type, 'latin1')]],
  };
  return oneRequest(
    'content-type',
    `${call.featureId}/${call.fn} ${shorten(type)}`,
    spec,
    right ? callExpect(call) : { kind: 'rpc', statuses: [400, 415] },
  );
}

/** @type {CaseClass} */
function deepArgs(ctx) {
  const { rng } = ctx;
  const call = validCall(ctx);
  const depth = rng.weighted([
    [rng.int(60, 70), 2],
    [100, 2],
    [1_000, 2],
    [10_000, 2],
    [100_000, 2],
  ]);
  const shape = rng.pick(['array', 'object', 'mixed']);
  const open = shape === 'array' ? '[' : shape === 'object' ? '{"a":' : null;
  let nest;
  if (open) nest = open.repeat(depth) + '1' + (shape === 'array' ? ']' : '}').repeat(depth);
  else nest = '[{"a":'.repeat(depth >> 1) + '1' + '}]'.repeat(depth >> 1);
  const body = `{"args":[${nest}]}`;
  // Deeper than 64 levels is refused with 400 before any function sees it (SPEC §4); the
  // boundary itself may go either way depending on how levels are counted.
  const expect = depth >= 100 ? { kind: 'rpc', statuses: [400, 413] } : { kind: 'rpc' };
  return oneRequest(
    'deep-args',
    `${call.featureId}/${call.fn} ${shape} nested ${depth} deep`,
    { ...callSpec(ctx, call), body },
    expect,
  );
}

/** @type {CaseClass} */
function wideArgs(ctx) {
  const { rng } = ctx;
  const call = validCall(ctx);
  const n = rng.int(10_000, 120_000);
  const body = rng.pick([
    () => `{"args":[[${'1,'.repeat(n)}1]]}`,
    () => `{"args":[${'0,'.repeat(n)}0]}`,
    () => `{"args":[{${Array.from({ length: n >> 2 }, (_, i) => `"k${i}":${i}`).join(',')}}]}`,
    () => `{"args":["${'x'.repeat(rng.int(100_000, BODY_LIMIT - 64))}"]}`,
    () => `{"args":[[${'{"a":[1,2,{"b":"c"}]},'.repeat(n >> 3)}{}]]}`,
    () => `{"args":[{"text":"${'é'.repeat(n)}","votes":1,"kind":"must"}]}`,
  ])();
  return oneRequest(
    'wide-args',
    `${call.featureId}/${call.fn} ${body.length} bytes wide`,
    { ...callSpec(ctx, call), body },
    { kind: 'rpc', extra: call.extra ?? [] },
  );
}

const BAD_UTF8 = [
  [0xff],
  [0xfe, 0xff],
  [0xc0, 0x80],
  [0xed, 0xa0, 0x80],
  [0xf4, 0x90, 0x80, 0x80],
  [0x80],
  [0xe2, 0x82],
  [0xf8, 0x88, 0x80, 0x80, 0x80],
  [0xc3, 0x28],
];
const ESCAPES = [
  '\\u0000',
  '\\ud800',
  '\\udc00x',
  '\\ud83d\\ude00',
  '\\u0041',
  '\\uffff',
  '\\ufeff',
  '\\u202e',
  '\\ud800\\ud800',
  'a\\u0000b',
  '\\u0007\\b\\f',
];

/** @type {CaseClass} */
function strings(ctx) {
  const { rng } = ctx;
  const [featureId, fn] = rng.pick([
    [HANDLERS, 'addRule'],
    [HANDLERS, 'remember'],
    [HANDLERS, 'dice'],
    [HANDLERS, 'zodChecked'],
    [HANDLERS, 'getRule'],
    ...(ctx.crud
      ? [
          [CRUD, 'addRule'],
          [CRUD, 'listRules'],
          [CRUD, 'editRule'],
        ]
      : []),
  ]);
  const variant = rng.int(0, 2);
  let inner;
  let label;
  let expect = /** @type {import('./fuzz-expect.js').Expect} */ ({ kind: 'rpc' });
  if (variant === 0) {
    const bytes = rng.pick(BAD_UTF8);
    inner = Buffer.concat([Buffer.from('a'), Buffer.from(bytes), Buffer.from('z')]);
    label = `invalid UTF-8 ${Buffer.from(bytes).toString('hex')}`;
  } else if (variant === 1) {
    inner = Buffer.from(rng.pick(ESCAPES));
    label = `escape ${inner.toString()}`;
  } else {
    // A raw control byte inside a JSON string is not JSON.
    inner = Buffer.from([0x61, rng.pick([0x00, 0x01, 0x0a, 0x1f]), 0x62]);
    label = `raw control byte ${inner[1]}`;
    expect = { kind: 'rpc', statuses: [400] };
  }
  const value = Buffer.concat([Buffer.from('"'), inner, Buffer.from('"')]);
  const pieces =
    fn === 'addRule'
      ? ['[{"text":', value, featureId === CRUD ? ',"votes":1,"kind":"must"}]' : ',"votes":1}]']
      : fn === 'zodChecked'
        ? ['[{"title":', value, ',"count":1}]']
        : fn === 'listRules'
          ? ['[{"where":{"text":{"eq":', value, '}}}]']
          : fn === 'editRule'
            ? ['["00000000-0000-4000-8000-000000000000",{"text":', value, '}]']
            : ['[', value, ']'];
  const body = Buffer.concat([Buffer.from('{"args":'), ...pieces.map((p) => Buffer.from(p)), Buffer.from('}')]);
  return oneRequest(
    'strings',
    `${featureId}/${fn} ${label}`,
    { method: 'POST', target: target(featureId, fn), host: ctx.hostHeader, headers: [JSON_TYPE], body },
    expect,
  );
}

/** @type {CaseClass} */
function wrongMethod(ctx) {
  const { rng } = ctx;
  const call = simpleCall(ctx);
  const method = rng.pick(['GET', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD', 'TRACE', 'PROPFIND', 'GET', 'PUT']);
  const body = ['GET', 'HEAD', 'TRACE', 'OPTIONS'].includes(method) && rng.chance(0.7) ? null : argsBody(call.args);
  const spec = { ...callSpec(ctx, call), method, body };
  // Vite answers every OPTIONS itself (its CORS middleware runs before any plugin's): 204, no body.
  if (method === 'OPTIONS' && ctx.hostName === 'vite')
    return oneRequest('wrong-method', `${method} ${call.featureId}/${call.fn}`, spec, { kind: 'page' });
  return oneRequest('wrong-method', `${method} ${call.featureId}/${call.fn}`, spec, { kind: 'rpc', statuses: [405] });
}

/** @type {CaseClass} */
function badMethod(ctx) {
  const call = simpleCall(ctx);
  const method = ctx.rng.pick(['post', 'P0ST', 'FOO', 'PO ST', 'POST\u0000', 'GET /x', '', 'BREW']);
  return oneRequest(
    'bad-method',
    `${shorten(method)} ${call.fn}`,
    { ...callSpec(ctx, call), method },
    { kind: 'parser' },
  );
}

/** @type {CaseClass} */
function pathTricks(ctx) {
  const { rng } = ctx;
  const call = simpleCall(ctx);
  const base = target(call.featureId, call.fn);
  /** @type {[string, import('./fuzz-expect.js').Expect][]} */
  const tricks = [
    ['/rpc/', { kind: 'rpc', statuses: [404] }],
    ['/rpc//', { kind: 'rpc', statuses: [404] }],
    [`/rpc//${call.fn}`, { kind: 'rpc', statuses: [404] }],
    [`/rpc/${call.featureId}`, { kind: 'rpc', statuses: [404] }],
    [`/rpc/${call.featureId}/`, { kind: 'rpc', statuses: [404] }],
    [`${base}/`, { kind: 'rpc', statuses: [404] }],
    [`${base}/extra`, { kind: 'rpc', statuses: [404] }],
    [`${base}//`, { kind: 'rpc', statuses: [404] }],
    [`/rpc/${call.featureId}//${call.fn}`, { kind: 'rpc', statuses: [404] }],
    [`/rpc/${'a'.repeat(rng.int(100, 6000))}/${call.fn}`, { kind: 'rpc', statuses: [404] }],
    [`/rpc/${call.featureId}/${'f'.repeat(rng.int(100, 6000))}`, { kind: 'rpc', statuses: [403] }],
    [`/rpc/${'/x'.repeat(rng.int(10, 2000))}`, { kind: 'rpc', statuses: [404] }],
    [`${base}?x=1&y&__proto__[a]=1`, { kind: 'rpc', statuses: SIMPLE_STATUSES, simple: true }],
    [`/rpc/%${call.featureId.slice(1)}/${call.fn}`, { kind: 'rpc', statuses: REFUSED_STATUSES }],
    [`/rpc/%66eature-handlers/version`, { kind: 'rpc', statuses: [...REFUSED_STATUSES, ...SIMPLE_STATUSES] }],
    [`/rpc/${call.featureId}/%76ersion`, { kind: 'rpc', statuses: [...REFUSED_STATUSES, ...SIMPLE_STATUSES] }],
    [`/rpc/${call.featureId}/..%2F${call.fn}`, { kind: 'rpc', statuses: REFUSED_STATUSES }],
    [`/rpc/${call.featureId}/%2e%2e`, { kind: 'rpc', statuses: REFUSED_STATUSES }],
    // Dot segments are resolved before routing: these name another path (or the same call).
    [`/rpc/../_health`, { kind: 'page' }],
    [`/rpc/./${call.featureId}/${call.fn}`, { kind: 'rpc', statuses: [...REFUSED_STATUSES, ...SIMPLE_STATUSES] }],
    [`/rpc/%00/${call.fn}`, { kind: 'rpc', statuses: REFUSED_STATUSES }],
    [`/rpc/%ff%fe/${call.fn}`, { kind: 'rpc', statuses: REFUSED_STATUSES }],
    [`/rpc/%/${call.fn}`, { kind: 'rpc', statuses: REFUSED_STATUSES }],
    [`/rpc/${call.featureId}/%`, { kind: 'rpc', statuses: REFUSED_STATUSES }],
    [`/rpc/${call.featureId}/${call.fn}%00`, { kind: 'rpc', statuses: REFUSED_STATUSES }],
    [`/rpc/${call.featureId}/${call.fn}%2F`, { kind: 'rpc', statuses: REFUSED_STATUSES }],
    [`/rpc/${call.featureId}/\u00e9`, { kind: 'rpc', statuses: REFUSED_STATUSES }],
    [`/rpc/${call.featureId}/${'x'.repeat(20_000)}`, { kind: 'parser' }],
    [`${base}\t`, { kind: 'parser' }],
    [`${base} HTTP/1.1\r\nX-Smuggled: 1\r\n\r\nGET /x`, { kind: 'parser' }],
    // Absolute form: the dev host sees only paths that start with /rpc/, so Vite answers it.
    [
      `http://127.0.0.1/${base.slice(1)}`,
      ctx.hostName === 'vite' ? { kind: 'page' } : { kind: 'rpc', statuses: [...REFUSED_STATUSES, ...SIMPLE_STATUSES] },
    ],
  ];
  const [path, expect] = rng.pick(tricks);
  // Node's parser refuses raw non-ASCII and control bytes in the target with a plain 400.
  const raw = Buffer.from(path, 'utf8');
  const parserLevel = expect.kind === 'parser' || raw.some((b) => b > 0x7e || b < 0x21);
  const spec = { ...callSpec(ctx, call), target: raw };
  return oneRequest('path', `${shorten(path, 70)}`, spec, parserLevel ? { kind: 'parser' } : expect);
}

/** @type {CaseClass} */
function unknownNames(ctx) {
  const { rng } = ctx;
  const call = simpleCall(ctx);
  const pick = rng.int(0, 3);
  const [featureId, fn, status] =
    pick === 0
      ? [`nope-${rng.text(6)}`, call.fn, 404]
      : pick === 1
        ? [call.featureId, `nope${rng.text(6)}`, 403]
        : pick === 2
          ? [call.featureId, rng.pick(PROTOTYPE_NAMES), 403]
          : [rng.pick(PROTOTYPE_NAMES), call.fn, 404];
  // A function of the other feature is not this feature's.
  const crossed = ctx.crud && rng.chance(0.2) ? [CRUD, 'hostName', 403] : null;
  const [f, n, s] = crossed ?? [featureId, fn, status];
  return oneRequest(
    'unknown-name',
    `${f}/${n}`,
    { ...callSpec(ctx, call), target: target(f, n) },
    { kind: 'rpc', statuses: [s] },
  );
}

/** Incoming request ids: kept only when short and safe (SPEC §4). */
const REQUEST_IDS = [
  'ok-id_1.2:3',
  'a'.repeat(64),
  'a'.repeat(65),
  '<script>alert(1)</script>',
  '../../etc/passwd',
  'id with space',
  '',
  '{"json":1}',
  'x'.repeat(4000),
  'id\u00e9',
  '%0d%0aSet-Cookie:%20a=b',
  'null',
  '__proto__',
];

/** @type {CaseClass} */
function headerTricks(ctx) {
  const { rng } = ctx;
  const call = simpleCall(ctx);
  const spec = callSpec(ctx, call);
  const simple = callExpect(call);
  const variant = rng.int(0, 14);
  switch (variant) {
    case 0: {
      const id = rng.pick(REQUEST_IDS);
      return oneRequest(
        'headers',
        `x-request-id ${shorten(id, 40)}`,
        { ...spec, headers: [...spec.headers, ['X-Request-Id', Buffer.from(id, 'utf8')]] },
        { ...simple, requestId: id },
      );
    }
    case 1:
      // A line break in the value just ends the header: the second line is the client's own header.
      return oneRequest(
        'headers',
        'x-request-id with a CRLF injection',
        { ...spec, headers: [...spec.headers, ['X-Request-Id', 'abc\r\nX-Injected: 1']] },
        { ...simple, requestId: 'abc' },
      );
    case 2:
      return oneRequest(
        'headers',
        'two x-request-id headers',
        { ...spec, headers: [...spec.headers, ['X-Request-Id', 'one'], ['X-Request-Id', 'two']] },
        { ...simple, requestId: 'one, two' },
      );
    case 3:
      return oneRequest(
        'headers',
        'x-request-id with NUL',
        { ...spec, headers: [...spec.headers, ['X-Request-Id', Buffer.from('a\u0000b')]] },
        { kind: 'parser' },
      );
    case 4: {
      const size = rng.int(17_000, 80_000);
      return oneRequest(
        'headers',
        `one ${size}-byte header`,
        { ...spec, headers: [...spec.headers, ['X-Big', 'a'.repeat(size)]] },
        { kind: 'parser' },
      );
    }
    case 5: {
      const size = rng.int(1_000, 12_000);
      return oneRequest(
        'headers',
        `one ${size}-byte header`,
        { ...spec, headers: [...spec.headers, ['X-Big', 'a'.repeat(size)]] },
        simple,
      );
    }
    case 6: {
      // Up to ~11 KB with the request's other headers: under Node's 16 KiB header limit on every
      // line, so the call must go through (1,100 such headers reached the limit on Node 22 and 26).
      const count = rng.int(100, 900);
      const many = Array.from(
        { length: count },
        (_, i) => /** @type {import('./fuzz-wire.js').Header} */ ([`X-H${i}`, 'v']),
      );
      return oneRequest('headers', `${count} headers`, { ...spec, headers: [...spec.headers, ...many] }, simple);
    }
    case 7: {
      const value = rng.pick(['abc', '-1', '1.5', '0x10', '99999999999999999999', ' ', '1, 2']);
      return oneRequest(
        'headers',
        `Content-Length ${shorten(value)}`,
        { ...spec, length: false, headers: [...spec.headers, ['Content-Length', value]] },
        { kind: 'parser' },
      );
    }
    case 8: {
      const body = Buffer.from(/** @type {string} */ (spec.body));
      const headers = [
        ...spec.headers,
        ['Content-Length', String(body.length)],
        ['Content-Length', String(body.length + 1)],
      ];
      return oneRequest(
        'headers',
        'two different Content-Length headers',
        { ...spec, length: false, headers },
        { kind: 'parser' },
      );
    }
    case 9: {
      const body = Buffer.from(/** @type {string} */ (spec.body));
      const headers = [...spec.headers, ['Content-Length', String(body.length)], ['Transfer-Encoding', 'chunked']];
      return oneRequest(
        'headers',
        'Content-Length and chunked',
        { ...spec, length: false, headers, body: chunkedBody(body, 7) },
        { kind: 'parser' },
      );
    }
    case 10: {
      const body = chunkedBody(Buffer.from(/** @type {string} */ (spec.body)), rng.int(1, 16));
      return oneRequest(
        'headers',
        'chunked body',
        { ...spec, length: false, headers: [...spec.headers, ['Transfer-Encoding', 'chunked']], body },
        simple,
      );
    }
    case 11: {
      const body = Buffer.from(`${rng.pick(['zz', '-1', '5', 'g'])}\r\nabc\r\n0\r\n\r\n`);
      return oneRequest(
        'headers',
        'broken chunk framing',
        { ...spec, length: false, headers: [...spec.headers, ['Transfer-Encoding', 'chunked']], body },
        { kind: 'parser' },
      );
    }
    case 12: {
      const origin = rng.pick([
        ['Origin', 'http://evil.example'],
        ['Origin', 'null'],
        ['Sec-Fetch-Site', 'cross-site'],
        ['Sec-Fetch-Site', 'same-site'],
      ]);
      return oneRequest(
        'headers',
        `${origin[0]}: ${origin[1]}`,
        { ...spec, headers: [...spec.headers, origin] },
        { kind: 'rpc', statuses: [403] },
      );
    }
    case 13: {
      // DNS rebinding: a name that is not this server's. `favn serve` refuses it with the contract's
      // 403; Vite's own host check answers first in dev (plain text), so there any 4xx will do.
      // A Host that is no host at all (a list, a space) cannot make a URL: the Node adapter refuses
      // it with a bare 400 before the app runs, like the HTTP parser would.
      const host = rng.pick([
        'evil.example',
        'evil.example:80',
        '127.0.0.1.evil.example',
        'a'.repeat(300),
        '',
        '127.0.0.1, evil.example',
        'a b',
      ]);
      const valid = /^[\w.:-]+$/.test(host);
      const expect = ctx.hostName === 'serve' && valid ? { kind: 'rpc', statuses: [403] } : { kind: 'parser' };
      return oneRequest('headers', `Host ${shorten(host, 40)}`, { ...spec, host }, expect);
    }
    default: {
      const identity = rng.pick([
        'not json',
        '[]',
        'null',
        '{"sub":',
        '{"sub":"x","roles":"admin"}',
        '{"sub":"' + 'x'.repeat(6000) + '"}',
        '{"__proto__":{"admin":true}}',
      ]);
      const broken = !/^\{.*\}$/.test(identity);
      // Outside dev the identity header means nothing; in dev malformed claims are 401.
      const expect =
        ctx.hostName === 'vite' && broken
          ? { kind: 'rpc', statuses: [401] }
          : { kind: 'rpc', statuses: [...SIMPLE_STATUSES, 401] };
      return oneRequest(
        'headers',
        `dev identity ${shorten(identity, 30)}`,
        { ...spec, headers: [...spec.headers, ['X-Favn-Dev-Identity', identity]] },
        expect,
      );
    }
  }
}

/**
 * A body over the limit: declared by Content-Length (refused before reading), or chunked
 * (refused once it passes the limit). Sent in pieces, stopping at the answer.
 *
 * @type {CaseClass}
 */
function bigBody(ctx) {
  const { rng } = ctx;
  const call = simpleCall(ctx);
  const size = rng.pick([
    BODY_LIMIT + 1,
    BODY_LIMIT + rng.int(2, 4096),
    2 * BODY_LIMIT,
    rng.int(BODY_LIMIT + 1, 6 * BODY_LIMIT),
  ]);
  const body = Buffer.alloc(size, 0x20);
  Buffer.from('{"args":["').copy(body, 0);
  body.write('"]}', size - 3);
  const chunked = rng.chance(0.4);
  const head = requestBytes({
    ...callSpec(ctx, call),
    body: null,
    headers: [JSON_TYPE, chunked ? ['Transfer-Encoding', 'chunked'] : ['Content-Length', String(size)]],
  });
  const payload = chunked ? chunkedBody(body, 64 * 1024) : body;
  const parts = [{ bytes: head }];
  for (let i = 0; i < payload.length; i += 256 * 1024) parts.push({ bytes: payload.subarray(i, i + 256 * 1024) });
  return {
    cls: 'big-body',
    label: `${call.featureId}/${call.fn} ${size} bytes${chunked ? ' chunked' : ''}`,
    plan: { parts, responses: 1, stopOnAnswer: true },
    expects: [{ kind: 'rpc', statuses: [413], mayClose: true }],
  };
}

/**
 * A body exactly at the limit is read and parsed, never 413.
 *
 * @type {CaseClass}
 */
function limitBody(ctx) {
  const call = simpleCall(ctx);
  const skeleton = `{"args":[""]}`;
  const body = `{"args":["${'y'.repeat(BODY_LIMIT - skeleton.length)}"]}`;
  return oneRequest(
    'limit-body',
    `${call.featureId}/${call.fn} exactly ${body.length} bytes`,
    { ...callSpec(ctx, call), body },
    { kind: 'rpc', statuses: CONTRACT_STATUSES.filter((s) => s !== 413) },
  );
}

/**
 * A valid call written in pieces with pauses (the host must wait and answer).
 *
 * @type {CaseClass}
 */
function slowCall(ctx) {
  const { rng } = ctx;
  const call = simpleCall(ctx);
  const bytes = requestBytes(callSpec(ctx, call));
  const pieces = rng.int(2, 6);
  const parts = [];
  for (let i = 0; i < pieces; i++) {
    const from = Math.floor((i * bytes.length) / pieces);
    parts.push({
      bytes: bytes.subarray(from, Math.floor(((i + 1) * bytes.length) / pieces)),
      delayMs: i ? rng.int(20, 400) : 0,
    });
  }
  return {
    cls: 'slow',
    label: `${call.featureId}/${call.fn} in ${pieces} pieces`,
    plan: { parts, responses: 1 },
    expects: [callExpect(call)],
  };
}

/**
 * A client that goes away: mid-headers, mid-body, or before sending anything.
 *
 * @type {CaseClass}
 */
function abandoned(ctx) {
  const { rng } = ctx;
  const call = validCall(ctx);
  const bytes = requestBytes(callSpec(ctx, call));
  const headerEnd = bytes.indexOf('\r\n\r\n');
  const cut = rng.pick([
    0,
    rng.int(1, headerEnd),
    headerEnd + 4 + rng.int(0, Math.max(0, bytes.length - headerEnd - 6)),
  ]);
  const wait = rng.int(50, 1_000);
  return {
    cls: 'abandoned',
    label: `${call.featureId}/${call.fn} cut after ${cut} of ${bytes.length} bytes, gone after ${wait} ms`,
    plan: { parts: cut ? [{ bytes: bytes.subarray(0, cut) }] : [], responses: 0, abandonAfterMs: wait },
    expects: [],
  };
}

/**
 * Two or three requests in one write on one keep-alive connection; answers come in order.
 *
 * @type {CaseClass}
 */
function pipelined(ctx) {
  const { rng } = ctx;
  const count = rng.int(2, 3);
  const bytes = [];
  const expects = [];
  const labels = [];
  for (let i = 0; i < count; i++) {
    const last = i === count - 1;
    const call = simpleCall(ctx);
    const kind = rng.int(0, 3);
    const spec = { ...callSpec(ctx, call), close: last };
    if (kind === 0) {
      bytes.push(requestBytes(spec));
      expects.push(callExpect(call));
      labels.push(call.fn);
    } else if (kind === 1) {
      bytes.push(requestBytes({ ...spec, body: '{"args":' }));
      expects.push({ kind: 'rpc', statuses: [400] });
      labels.push('bad-json');
    } else if (kind === 2) {
      bytes.push(requestBytes({ ...spec, method: 'GET', body: null }));
      expects.push({ kind: 'rpc', statuses: [405] });
      labels.push('GET');
    } else {
      bytes.push(requestBytes({ ...spec, target: target(call.featureId, 'toString') }));
      expects.push({ kind: 'rpc', statuses: [403] });
      labels.push('toString');
    }
  }
  return {
    cls: 'pipelined',
    label: labels.join(' + '),
    plan: { parts: [{ bytes: Buffer.concat(bytes) }], responses: count },
    expects,
  };
}

/** Every RPC class with its weight (share of the requests). */
export const RPC_CLASSES = /** @type {[string, CaseClass, number][]} */ ([
  ['valid', valid, 30],
  ['wrong-args', wrongArgs, 5],
  ['fault', faults, 2],
  ['heavy-fault', heavyFaults, 0.3],
  ['bad-json', badJson, 7],
  ['content-type', contentType, 4],
  ['deep-args', deepArgs, 5],
  ['wide-args', wideArgs, 4],
  ['strings', strings, 5],
  ['wrong-method', wrongMethod, 4],
  ['bad-method', badMethod, 1],
  ['path', pathTricks, 6],
  ['unknown-name', unknownNames, 4],
  ['headers', headerTricks, 8],
  ['big-body', bigBody, 2.5],
  ['limit-body', limitBody, 0.5],
  ['slow', slowCall, 1],
  ['abandoned', abandoned, 1],
  ['pipelined', pipelined, 2],
]);
