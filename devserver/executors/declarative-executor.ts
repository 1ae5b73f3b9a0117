import { isDeclarative } from '../../runtime/declarative.js';
import type { Invocation } from './executor.js';
import type { Adapter } from './module-executor.js';
import type { FeatureData } from '../data/feature-data.js';

/**
 * Lets the module executor run `queryRows`/`insertRow`/`patchRow`/`deleteRow` exports through the
 * feature's data layer. `data()` is read per call, so a migrated schema applies at once.
 */
export function declarativeAdapter(featureId: string, data: () => FeatureData | null): Adapter {
  return (name, value): Invocation | undefined => {
    if (!isDeclarative(value)) return undefined;
    return (ctx, args) => {
      const current = data();
      if (!current) throw new Error(`${name} is a ${String(value[Symbol.for('favn.serverFunction') as never])} function, but feature "${featureId}" has no server/schema.ts defining "${value.table}"`);
      return current.run(value, name, ctx, args);
    };
  };
}
