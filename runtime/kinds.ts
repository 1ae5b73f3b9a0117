/**
 * The kinds of server function, listed once. Each kind runs in one executor on the host:
 * `plain` functions in-process, the declarative CRUD kinds as compiled SQL, the handler kinds in
 * isolates. Rate limits, the export scan and the manifest read their lists from here.
 */

/** Declarative CRUD: compiled once to parameterized SQL, no JavaScript per call. */
export const DECLARATIVE_KINDS = Object.freeze(['queryRows', 'insertRow', 'patchRow', 'deleteRow'] as const);
/** Handlers: run in an isolate with memory and CPU limits. */
export const HANDLER_KINDS = Object.freeze(['query', 'mutation', 'action'] as const);
/** Every kind, in the order messages list them; `plain` is an exported async function. */
export const FUNCTION_KINDS = Object.freeze([...DECLARATIVE_KINDS, ...HANDLER_KINDS, 'plain'] as const);

export type DeclarativeKind = (typeof DECLARATIVE_KINDS)[number];
export type HandlerKind = (typeof HANDLER_KINDS)[number];
export type FunctionKind = (typeof FUNCTION_KINDS)[number];

/** Brand shared by every non-plain server function (found across module copies). */
export const SERVER_FUNCTION = Symbol.for('favn.serverFunction');

/** True for a kind's name. */
export function isFunctionKind(value: unknown): value is FunctionKind {
  return (FUNCTION_KINDS as readonly unknown[]).includes(value);
}

/** True for the name of a declarative kind. */
export function isDeclarativeKind(value: unknown): value is DeclarativeKind {
  return (DECLARATIVE_KINDS as readonly unknown[]).includes(value);
}

/** True for the name of a handler kind. */
export function isHandlerKind(value: unknown): value is HandlerKind {
  return (HANDLER_KINDS as readonly unknown[]).includes(value);
}

/**
 * The kind of an exported server function, read from the brand that `queryRows`/`insertRow`/
 * `patchRow`/`deleteRow` and `query`/`mutation`/`action` put on what they return; anything else
 * is `plain`.
 *
 * @example
 * functionKindOf(queryRows('rules')) // 'queryRows'
 * functionKindOf(action({ handler })) // 'action'
 * functionKindOf(async (ctx) => 1) // 'plain'
 */
export function functionKindOf(value: unknown): FunctionKind {
  if ((typeof value !== 'object' && typeof value !== 'function') || value === null) return 'plain';
  const brand = (value as { [SERVER_FUNCTION]?: unknown })[SERVER_FUNCTION];
  return isFunctionKind(brand) ? brand : 'plain';
}
