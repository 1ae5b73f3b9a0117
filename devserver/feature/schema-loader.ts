import type { SchemaDefinition } from '../../runtime/schema.js';
import { UsageError } from '../common/usage-error.js';

/** Where a feature's tables are defined, relative to its root, unless the plugin says otherwise. */
export const DEFAULT_SCHEMA_FILE = 'server/schema.ts';

/** Export of a server bundle that carries the namespace of the feature's schema module. */
export const SCHEMA_EXPORT = '__favn_schema';

/**
 * The schema a loaded schema module defines: its default export (`export default
 * defineSchema({...})`), or else a named `export const schema = defineSchema({...})`. The one
 * reading of a schema module, for `vite` dev, `favn db` and built features alike.
 *
 * @example
 * schemaOf(await import('./server/schema.ts'), 'server/schema.ts')
 */
export function schemaOf(namespace: unknown, file: string, absolute = file): SchemaDefinition {
  const ns = (typeof namespace === 'object' && namespace !== null ? namespace : {}) as Record<string, unknown>;
  // The module's own exports first; only a bundle built before the namespace was carried exports
  // the definition itself (a module may well export a `tables` object of its own besides).
  const isNamespace = Object.prototype.toString.call(ns) === '[object Module]';
  const definition = [ns.default, ns.schema, isNamespace ? undefined : ns].find(isSchema);
  if (!isSchema(definition)) {
    throw new UsageError(`${file} must "export default defineSchema({...})"`, { file: absolute });
  }
  return definition;
}

function isSchema(value: unknown): value is SchemaDefinition {
  return typeof value === 'object' && value !== null && 'tables' in value && typeof value.tables === 'object';
}
