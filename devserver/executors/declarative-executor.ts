import { isDeclarative } from '../../runtime/declarative.js';
import { DECLARATIVE_KINDS } from '../../runtime/kinds.js';
import { UsageError } from '../common/usage-error.js';
import type { FeatureData } from '../data/feature-data.js';
import type { Executor, Invocation } from './executor.js';

/**
 * Runs `queryRows`/`insertRow`/`patchRow`/`deleteRow` exports as parameterized SQL through the
 * feature's data layer. `data()` is read per call, so a migrated schema applies at once; a table
 * the current schema lacks is reported when the module loads.
 *
 * @example
 * new DeclarativeExecutor('feature-notes', () => data).invocation('listNotes', queryRows('notes'))
 */
export class DeclarativeExecutor implements Executor {
  readonly kinds = DECLARATIVE_KINDS;
  readonly #featureId: string;
  readonly #data: () => FeatureData | null;

  constructor(featureId: string, data: () => FeatureData | null) {
    this.#featureId = featureId;
    this.#data = data;
  }

  invocation(name: string, value: unknown): Invocation | undefined {
    if (!isDeclarative(value)) return undefined;
    const data = this.#data();
    if (!data) {
      throw new UsageError(
        `${name} reads or writes table "${value.table}", but feature "${this.#featureId}" has no server/schema.ts defining it`,
      );
    }
    // Compiled now: an unknown table or column is the module's mistake, shown when it loads.
    data.compile(value, name);
    return (ctx, args) => {
      const current = this.#data();
      if (!current) throw new UsageError(`${name}: feature "${this.#featureId}" has no server/schema.ts any more`);
      return current.run(value, name, ctx, args);
    };
  }
}
