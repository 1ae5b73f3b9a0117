// One server module with an export of every kind, as a feature writes them. The function table
// tests load it as it is and hand each export to the executor of its kind.
import { query, queryRows } from '@favn/vite-plugin-server-fns/server';

/** A plain function: runs in the host process, where Node's `process` exists. */
export async function whereAmI(_ctx: unknown, label: string) {
  return { label, process: typeof process };
}

/** Declarative CRUD: compiled to SQL against the `notes` table of the schema. */
export const listNotes = queryRows('notes', { defaultOrder: { column: 'body', direction: 'asc' } });

/** A handler: runs in an isolate, where nothing of Node exists. */
export const whereAmIIsolated = query({
  handler: (_ctx, label: string) => ({ label, process: typeof (globalThis as { process?: unknown }).process }),
});

/** Not a function: nothing to call, even though the scan lists it. */
export const pageSize = 20;

/** A function the scan does not list (as if added after the scan): never callable. */
export function unlisted() {
  return 'should not run';
}
