import { SERVER_FUNCTION } from '../../runtime/declarative.js';
import { isFunctionKind, type FunctionKind } from './limits.js';

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
  return brand !== 'plain' && isFunctionKind(brand) ? brand : 'plain';
}
