import { useQuery } from '@favn/vite-plugin-server-fns/react';
import { ErrorMessage } from './ErrorMessage';
import { listNotes } from './notes.server';
import { noteStats } from './stats.server';

export function NoteStats() {
  const notes = useQuery(listNotes);
  const texts = (notes.data ?? []).map((n) => n.text);
  // Re-runs whenever the texts change (the arguments are compared as JSON).
  const stats = useQuery(noteStats, texts);
  return (
    <section className="card" aria-labelledby="stats-title">
      <h2 id="stats-title">Note stats</h2>
      <p className="muted">
        Computed by <code>noteStats</code>, a <code>query</code> handler in <code>src/stats.server.ts</code> that runs
        in an isolate.
      </p>
      <ErrorMessage error={stats.error} />
      {stats.data && (
        <p data-testid="note-stats">
          {stats.data.notes} notes, {stats.data.words} words, longest word “{stats.data.longest}”
          {stats.data.sandboxed ? ' (computed in an isolate: no process object there)' : ''}
        </p>
      )}
    </section>
  );
}
